import ArgumentParser

@main
struct LLMQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmq",
        abstract: "Run large sets of LLM prompts through a persistent queue.",
        discussion: """
            llmq submit prompts.jsonl     validate and enqueue a JSONL file as a job
            llmq status                   show every job's progress and cost
            """,
        version: "0.1.0",
        subcommands: [Submit.self, Status.self, Mock.self, Cache.self, Prices.self]
    )
}

/// Options every command that touches the queue accepts.
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: "Folder of the queue state (default: $LLMQ_HOME, else ./jobs).")
    var home: String?
}
