import CLibFuzzerDriver
@testable import FuzzInvariants

runLibFuzzerAndExit(CommandLine.argc, CommandLine.unsafeArgv) { FuzzTarget.responsesResponse.fuzz($0, $1) }
