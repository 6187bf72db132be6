import ArgumentParser
import Foundation
import LLMQCore
import LLMQEngine
import LLMQStore

extension LLMQ {
    struct Submit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a JSONL file of prompts and enqueue it as a job, all or nothing.",
            discussion: """
                Each line is either an OpenAI Batch API line ({"custom_id","method":"POST",
                "url":"/v1/chat/completions","body":{…}}) or a simple one ({"prompt":…} or
                {"messages":[…]} with optional custom_id, model, system, max_tokens, temperature,
                top_p, stop, seed, response_format, metadata). If any line is invalid nothing is
                enqueued and the problems are listed; submitting the same file again adds nothing.
                """)

        @Argument(help: "The JSONL file to submit, or - for standard input.")
        var file: String

        @Option(help: "Job name (default: the file's name without extension).")
        var job: String?

        @Option(help: "Model for lines that do not name one.")
        var model: String?

        @Flag(help: "Enqueue the valid lines and write the invalid ones to <job>/rejected.jsonl.")
        var skipInvalid = false

        @Flag(
            help: """
                Send the job through the providers' batch APIs (half price, results within 24 hours);                 llmq work then runs it in batches.
                """)
        var batch = false

        @Flag(help: "Replace requests whose custom_id is already in the job with a different request.")
        var replace = false

        @OptionGroup var priceOptions: PriceOptions

        @OptionGroup var homeOptions: HomeOptions

        var jobName: String { job ?? JobName.derived(fromFile: file) }

        func validate() throws {
            if let problem = JobName.problem(with: jobName) { throw ValidationError("--job \(jobName): \(problem)") }
            if let model, ModelRouter.route(model) == nil {
                throw ValidationError(
                    "--model \(model): no provider serves this model; \(ModelRouter.servedModelsHint)")
            }
        }

        func run() throws {
            let home = QueueHome.resolve(option: homeOptions.home)
            var options = Submitter.Options(path: file, job: jobName)
            options.defaultModel = model
            options.skipInvalid = skipInvalid
            options.replace = replace
            options.mode = batch ? .batch : nil
            options.prices = try priceOptions.load()
            let store = try SQLiteQueueStore(home: home)
            do {
                let report = try Submitter(options: options, home: home).run(store: store)
                print(SubmitFormatter.summary(report, home: home))
            } catch let rejected as SubmissionRejected {
                FileHandle.standardError.write(Data(SubmitFormatter.rejection(rejected.report).utf8))
                throw ExitCode(65)
            } catch let empty as EmptyInput {
                FileHandle.standardError.write(Data("error: \(empty)\n".utf8))
                throw ExitCode(65)
            }
        }
    }
}
