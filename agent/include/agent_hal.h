/*
 * agent_hal.h - what the station agent needs from the board it runs on.
 *
 * A port fills one agent_hal_t and hands it to agent_init(). Every function is called from
 * the thread that calls agent_feed()/agent_poll(); none is called re-entrantly. The core
 * never allocates memory and never calls the C library beyond <string.h>.
 *
 * Return values: functions returning int answer AGENT_ST_OK (0) or one of the protocol
 * status codes below; the core passes that status to the station unchanged, so a port says
 * what went wrong in the protocol's own words (AGENT_ST_NOT_FOUND, AGENT_ST_TPM_FAILURE,
 * AGENT_ST_INTERNAL, ...).
 *
 * Documented for porting engineers in docs/agent-porting.md.
 */
#ifndef AGENT_HAL_H
#define AGENT_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes of the board protocol (docs/board-protocol.md section 7). */
enum agent_status {
    AGENT_ST_OK = 0,
    AGENT_ST_MALFORMED = 1,
    AGENT_ST_UNKNOWN_OP = 2,
    AGENT_ST_BAD_ARGS = 3,
    AGENT_ST_UNSUPPORTED = 4,
    AGENT_ST_LOCKED = 5,
    AGENT_ST_NOT_FOUND = 6,
    AGENT_ST_EXISTS = 7,
    AGENT_ST_TOO_LARGE = 8,
    AGENT_ST_TPM_FAILURE = 9,
    AGENT_ST_DENIED = 10,
    AGENT_ST_INTERNAL = 11
};

/* Capabilities (section 4): a port ORs together what its hardware has. */
#define AGENT_CAP_TPM 0x01u     /* `tpm` passthrough reaches a TPM 2.0 */
#define AGENT_CAP_SE 0x02u      /* device key generated on the board, never leaves it */
#define AGENT_CAP_PRIVKEY 0x04u /* no secure element: accepts an injected P-256 key */
#define AGENT_CAP_SYMKEY 0x08u  /* stores a symmetric key */

/*
 * Durable records the core keeps through the port's storage. Objects are stored as
 * "generation (uint32 big-endian) || content", so content and generation change together.
 */
enum agent_record {
    AGENT_REC_CERT_CHAIN = 0,
    AGENT_REC_DPS = 1,
    AGENT_REC_SYMKEY = 2,
    AGENT_REC_PRIVKEY = 3,
    AGENT_REC_LOCK = 4, /* one byte: 1 once `lock` was executed */
    AGENT_REC_COUNT = 5
};

/* Largest record: a 4-byte generation plus the largest object (cert_chain, 6144 bytes). */
#define AGENT_RECORD_MAX (4u + 6144u)

#define AGENT_P256_PUBLIC_SIZE 65u /* uncompressed point 04 || X || Y (psa_export_public_key) */
#define AGENT_P256_SCALAR_SIZE 32u /* private scalar d (psa_import_key of a raw ECC key) */
#define AGENT_P256_SIGNATURE_SIZE 64u /* r || s, as psa_sign_hash returns it */
#define AGENT_SHA256_SIZE 32u
#define AGENT_P384_PUBLIC_SIZE 97u    /* uncompressed P-384 point 04 || X || Y */
#define AGENT_P384_SIGNATURE_SIZE 96u /* r || s of a P-384 signature */
#define AGENT_SHA384_SIZE 48u
#define AGENT_TPM_MAX 4096u /* largest TPM command or response the protocol carries */

typedef struct agent_hal {
    void *ctx; /* passed back as the first argument of every function */

    /* ---- identity and capabilities ------------------------------------------------------ */
    uint32_t caps;     /* AGENT_CAP_* of this board */
    const char *model; /* text <= 64 characters, e.g. "LAB-SE-1" */
    const char *hw;    /* hardware revision, <= 32 characters */
    const char *fw;    /* firmware version, <= 32 characters */
    /* The serial number into out (not NUL-terminated); returns its length in bytes
     * (<= cap, cap is 256). 0 = unknown: the serial is only printed on the board's sticker. */
    size_t (*serial)(void *ctx, char *out, size_t cap);

    /* ---- UART --------------------------------------------------------------------------- */
    /* Non-blocking read for agent_poll(): copy up to cap received bytes, return how many
     * (0 = nothing yet). May be NULL if the port calls agent_feed() itself (e.g. from an
     * interrupt-fed ring buffer). */
    size_t (*uart_read)(void *ctx, uint8_t *buf, size_t cap);
    /* Send bytes; blocks until all are queued. The core sends each frame (ending with its
     * 0x00) in exactly one call, so a port may drop or mangle whole frames for fault
     * injection (agent_current_op() names the operation being answered). */
    void (*uart_write)(void *ctx, const uint8_t *data, size_t len);

    /* ---- object storage ----------------------------------------------------------------- */
    /* Read record id into buf; *len = its size. AGENT_ST_NOT_FOUND if never written. */
    int (*store_read)(void *ctx, enum agent_record id, uint8_t *buf, size_t cap, size_t *len);
    /* Replace record id with data, atomically and durably: after a power cut the record holds
     * either the old or the new content, never a mix. The core answers only after this
     * returned AGENT_ST_OK. */
    int (*store_write)(void *ctx, enum agent_record id, const uint8_t *data, size_t len);
    /* Delete record id (factory reset); deleting a missing record is AGENT_ST_OK. */
    int (*store_erase)(void *ctx, enum agent_record id);

    /* ---- device key (ECDSA P-256), semantics of the PSA Crypto API ---------------------- */
    /* One key slot ("device"). A port with a secure element keeps the key inside it; the
     * host port keeps it as a PSA persistent key. */
    /* psa_generate_key: make a new key, replacing any existing one. */
    int (*key_generate)(void *ctx);
    /* psa_import_key: make d (32-byte big-endian scalar) the device key. AGENT_ST_BAD_ARGS if d
     * is not a valid P-256 private key. Only called on AGENT_CAP_PRIVKEY boards. */
    int (*key_import)(void *ctx, const uint8_t d[AGENT_P256_SCALAR_SIZE]);
    /* psa_export_public_key: the public key as 04 || X || Y. AGENT_ST_NOT_FOUND if no key. */
    int (*key_public)(void *ctx, uint8_t out[AGENT_P256_PUBLIC_SIZE]);
    /* psa_sign_hash(PSA_ALG_ECDSA(PSA_ALG_SHA_256)): r || s over a SHA-256 digest. */
    int (*key_sign_hash)(void *ctx, const uint8_t hash[AGENT_SHA256_SIZE],
                         uint8_t sig[AGENT_P256_SIGNATURE_SIZE]);
    /* psa_destroy_key (factory reset); no key is AGENT_ST_OK. */
    int (*key_destroy)(void *ctx);
    /* psa_hash_compute(PSA_ALG_SHA_256). */
    int (*sha256)(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA256_SIZE]);

    /* ---- operational key (ECDSA P-384), optional --------------------------------------- */
    /* Key slot "operational": the key DPS certificate management certifies (it makes the CSR
     * the device sends at every registration). Same PSA semantics as the device key, with
     * PSA_ALG_ECDSA(PSA_ALG_SHA_384). A port whose secure element cannot make P-384 keys
     * leaves all five NULL: the core then answers `keygen` with curve "p384" `unsupported`. */
    int (*op_key_generate)(void *ctx);
    int (*op_key_public)(void *ctx, uint8_t out[AGENT_P384_PUBLIC_SIZE]);
    int (*op_key_sign_hash)(void *ctx, const uint8_t hash[AGENT_SHA384_SIZE],
                            uint8_t sig[AGENT_P384_SIGNATURE_SIZE]);
    int (*op_key_destroy)(void *ctx);
    /* psa_hash_compute(PSA_ALG_SHA_384). */
    int (*sha384)(void *ctx, const uint8_t *data, size_t len, uint8_t out[AGENT_SHA384_SIZE]);

    /* ---- TPM transport (AGENT_CAP_TPM) -------------------------------------------------- */
    /* Send one complete TPM 2.0 command unchanged, return the complete response unchanged.
     * AGENT_ST_TPM_FAILURE if the TPM cannot be reached. May be NULL without AGENT_CAP_TPM. */
    int (*tpm_transmit)(void *ctx, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
                        size_t *rsp_len);

    /* ---- reset -------------------------------------------------------------------------- */
    /* Called after the answer to `reset` was handed to uart_write: a port that really reboots
     * does it here (flush the UART first). May be NULL. */
    void (*reset)(void *ctx, int factory);
} agent_hal_t;

#ifdef __cplusplus
}
#endif

#endif /* AGENT_HAL_H */
