import LLMQCore
import NIOCore

extension ByteBuffer {
    /// The readable bytes parsed as a JSON object, or nil if they are not one.
    func jsonObject() -> JSONObject? {
        withUnsafeReadableBytes { bytes in try? JSONParser.parse(bytes) }?.objectValue
    }
}
