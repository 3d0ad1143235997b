import CLibFuzzerDriver
@testable import FuzzInvariants

runLibFuzzerAndExit(CommandLine.argc, CommandLine.unsafeArgv) { FuzzTarget.nativeResponse.fuzz($0, $1) }
