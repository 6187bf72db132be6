import LLMQCore
import LLMQProviders
import LLMQStore
import LLMQTransport

/// What commands other than `llmq work` do to the providers' batches.
public enum RemoteBatches {
    /// Asks each provider to cancel these batches now (the ones created there);
    /// returns one line per batch saying what happened. The worker that collects
    /// them later cancels whatever this could not reach.
    public static func cancel(_ batches: [BatchRecord], runner: ProviderRunner, transport: any HTTPTransport) async
        -> [String]
    {
        var lines: [String] = []
        for batch in batches {
            guard let remoteID = batch.remoteID else {
                lines.append("\(batch.llmqID): not created at \(batch.provider.rawValue) yet; it never will be")
                continue
            }
            do {
                let endpoint = try runner.endpoint(for: batch.provider)
                guard let api = endpoint.batchAPI(transport: transport), batch.keyIndex < endpoint.keys.count else {
                    lines.append("\(remoteID): cannot reach its API now; the next llmq work cancels it")
                    continue
                }
                let remote = try await api.cancel(
                    BatchRunner.remote(batch), key: endpoint.keys[batch.keyIndex])
                lines.append("\(remoteID): \(remote.status)")
            } catch {
                lines.append("\(remoteID): \(error); the next llmq work cancels it")
            }
        }
        return lines
    }
}
