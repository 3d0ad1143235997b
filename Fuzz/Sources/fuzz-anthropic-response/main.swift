import CLibFuzzerDriver
@testable import FuzzInvariants

runLibFuzzerAndExit(CommandLine.argc, CommandLine.unsafeArgv) { FuzzTarget.anthropicResponse.fuzz($0, $1) }
