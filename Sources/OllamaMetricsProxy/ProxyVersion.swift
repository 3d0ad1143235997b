/// The version `--version` prints and the startup line logs.
public enum ProxyVersion {
    public static let current = "0.1.0"
}
