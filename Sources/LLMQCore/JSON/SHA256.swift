import COpenSSL

/// SHA-256 through the system's libcrypto (OpenSSL 3).
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { output, count in
            let ok = llmq_sha256(bytes.baseAddress, bytes.count, output.baseAddress)
            precondition(ok == 1, "EVP_Digest(SHA-256) failed")
            count = 32
        }
    }

    /// Writes the 32-byte digest of `bytes` into `output` (at least 32 bytes).
    public static func hash(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= 32)
        let ok = llmq_sha256(bytes.baseAddress, bytes.count, output.baseAddress!.assumingMemoryBound(to: UInt8.self))
        precondition(ok == 1, "EVP_Digest(SHA-256) failed")
    }

    /// The 32-byte digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// Lowercase hex of a byte string.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension SHA256 {
    /// SHA-256 over bytes fed in pieces (a file written chunk by chunk).
    public final class Hasher {
        private let context: OpaquePointer

        public init() {
            guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
            precondition(EVP_DigestInit_ex(context, llmq_sha256_md(), nil) == 1, "EVP_DigestInit_ex(SHA-256) failed")
            self.context = context
        }

        deinit { EVP_MD_CTX_free(context) }

        public func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { update($0) }
        }

        public func update(_ bytes: UnsafeRawBufferPointer) {
            precondition(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate failed")
        }

        /// The 32-byte digest of everything fed so far; the hasher starts over.
        public func finish() -> [UInt8] {
            let digest = [UInt8](unsafeUninitializedCapacity: 32) { output, count in
                var length: UInt32 = 0
                precondition(EVP_DigestFinal_ex(context, output.baseAddress, &length) == 1, "EVP_DigestFinal_ex failed")
                count = 32
            }
            precondition(EVP_DigestInit_ex(context, llmq_sha256_md(), nil) == 1, "EVP_DigestInit_ex(SHA-256) failed")
            return digest
        }
    }
}
