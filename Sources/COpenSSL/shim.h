#ifndef LLMQ_COPENSSL_SHIM_H
#define LLMQ_COPENSSL_SHIM_H

#include <stddef.h>
#include <openssl/evp.h>

/// One-shot SHA-256 of `len` bytes at `data` into the 32 bytes at `out`.
/// Returns 1 on success. A static inline function so the module needs no C target.
static inline int llmq_sha256(const void *data, size_t len, unsigned char *out) {
    unsigned int outlen = 0;
    return EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL);
}

#endif
