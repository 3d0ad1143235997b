import CLibFuzzerDriver
@testable import FuzzInvariants

runLibFuzzerAndExit(CommandLine.argc, CommandLine.unsafeArgv) { FuzzTarget.openAIResponse.fuzz($0, $1) }
