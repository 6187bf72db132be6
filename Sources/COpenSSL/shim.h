#ifndef LLMQ_COPENSSL_SHIM_H
#define LLMQ_COPENSSL_SHIM_H

#include <stddef.h>
#include <openssl/evp.h>

/// SHA-256 as an EVP_MD fetched once: OpenSSL 3 otherwise looks the algorithm up
/// on every EVP_Digest call, which costs a third of a small digest.
static inline const EVP_MD *llmq_sha256_md(void) {
    static const EVP_MD *cached = NULL;
    const EVP_MD *md = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
    if (md == NULL) {
        EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
        const EVP_MD *expected = NULL;
        if (__atomic_compare_exchange_n(&cached, &expected, fetched, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            md = fetched;
        } else {
            EVP_MD_free(fetched);
            md = expected;
        }
    }
    return md;
}

/// One-shot SHA-256 of `len` bytes at `data` into the 32 bytes at `out`.
/// Returns 1 on success. Static inline so the module needs no C target.
static inline int llmq_sha256(const void *data, size_t len, unsigned char *out) {
    unsigned int outlen = 0;
    return EVP_Digest(data, len, out, &outlen, llmq_sha256_md(), NULL);
}

#endif
