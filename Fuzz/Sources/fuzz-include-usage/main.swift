import CLibFuzzerDriver
@testable import FuzzInvariants

runLibFuzzerAndExit(CommandLine.argc, CommandLine.unsafeArgv) { FuzzTarget.includeUsage.fuzz($0, $1) }
