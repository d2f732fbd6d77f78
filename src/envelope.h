/*
 * envelope.h - the measurement envelope every iotlat message carries.
 *
 * A message must say who sent it, in which order, and when it was supposed
 * to leave, and that information has to survive any transformer that copies
 * it.  Two encodings carry the same fields:
 *
 * JSON (default): the user's payload is a JSON object and the envelope is one
 * object under its top-level key "iotlat", written first by the publisher:
 *
 *   {"iotlat":{"v":1,"pub":7,"dev":42,"seq":17,"t_intended":1700000000000000,
 *              "t_sent":1700000000000012,"t_hop":[1700000000000100]},
 *    "Metro":{"CheckIn":{"Token":"a1","Station":12}}}
 *
 *   v           format version (1)
 *   pub         publisher instance id (uint32), tells replicas apart
 *   dev         device index within that publisher (uint32)
 *   seq         per-device sequence number, 0, 1, 2, ...
 *   t_intended  scheduled send time, us since the Unix epoch (CLOCK_REALTIME)
 *   t_sent      time it was handed to the driver, same clock
 *   t_hop       optional array: one stamp per transformer passed, in order
 *   fin         optional, true on the per-device end-of-stream marker; its
 *               seq is then the number of messages scheduled for the device
 *   devices     optional (on fin markers): devices the publisher emulates
 *
 * The parser accepts the keys in any order, at any position among the user's
 * top-level keys, with any JSON whitespace, and ignores unknown keys inside
 * the envelope.  It also accepts the original Python tool's messages, which
 * carry only a top-level "lastUpdated" ISO-8601 time with microseconds
 * ("2024-05-01T12:00:00.123456", optional "Z" or +hh:mm offset; no offset
 * means UTC): those decode with IL_ENV_SEED set and t_intended = t_sent = that
 * time.
 *
 * Binary: a fixed little-endian header followed by the opaque payload:
 *
 *   0  u8  magic 'I'        1  u8 magic 'L'       2 u8 version (1)
 *   3  u8  flags (IL_ENV_FIN)                      4 u8 hop count (<= 8)
 *   5  u24 devices on fin markers (<= 0xFFFFFF), else 0
 *   8  u32 pub   12 u32 dev   16 u64 seq   24 i64 t_intended   32 i64 t_sent
 *   40 i64 t_hop[hop count]
 *   then the payload bytes
 *
 * Nothing here allocates.  Decoding treats its input as untrusted: every
 * failure is a negative return, never a crash or a read past `len`.
 */
#ifndef IL_ENVELOPE_H
#define IL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define IL_ENV_MAX_HOPS 8
#define IL_ENV_BIN_HEADER 40 /* binary header size without hop stamps */

#define IL_ENV_FIN 0x01  /* end-of-stream marker for one device */
#define IL_ENV_SEED 0x80 /* decoded from the old tool's "lastUpdated" format */

/* Error codes. */
#define IL_ENV_ENOSPC -1    /* output buffer too small */
#define IL_ENV_EMALFORMED -2 /* input is not a valid envelope */

typedef enum { IL_ENC_JSON = 0, IL_ENC_BINARY = 1 } il_encoding;

typedef struct il_env {
    uint32_t pub;
    uint32_t dev;
    uint64_t seq;
    int64_t t_intended;
    int64_t t_sent;
    uint32_t flags;    /* IL_ENV_FIN, IL_ENV_SEED */
    uint32_t devices;  /* on fin markers: publisher's device count, else 0 */
    uint32_t nhops;
    int64_t t_hop[IL_ENV_MAX_HOPS];
} il_env;

/* Encode envelope + body into out.  JSON: `body` must be a JSON object text
 * ("{...}", may be "{}" or empty meaning {}); the envelope is inserted as its
 * first key.  Binary: `body` is copied verbatim after the header.  Returns the
 * encoded length, IL_ENV_ENOSPC, or IL_ENV_EMALFORMED (JSON body not an
 * object, nhops > IL_ENV_MAX_HOPS, binary fin marker with devices > 0xFFFFFF).
 */
int il_env_encode(il_encoding enc, const il_env *e, const char *body,
                  size_t body_len, uint8_t *out, size_t cap);

/* Decode an envelope from msg.  The encoding is detected: binary by its magic
 * and version, otherwise JSON.  On success fills *e, and if body/body_len are
 * non-NULL points them at the payload (binary: bytes after the header; JSON:
 * the whole message).  Returns 0, or IL_ENV_EMALFORMED. */
int il_env_decode(const uint8_t *msg, size_t len, il_env *e,
                  const uint8_t **body, size_t *body_len);

/* Re-encode `msg` with one more hop stamp (the transformer's receive time),
 * keeping everything else, and optionally replacing the user body with
 * `new_body` (JSON object text for JSON messages, raw bytes for binary; NULL
 * keeps the original body).  Returns the new length, IL_ENV_ENOSPC, or
 * IL_ENV_EMALFORMED (including when the message already has IL_ENV_MAX_HOPS
 * stamps, or is in the seed format, which has nowhere to put one).  `out`
 * must not overlap `msg`. */
int il_env_add_hop(const uint8_t *msg, size_t len, int64_t t_hop,
                   const char *new_body, size_t new_body_len, uint8_t *out,
                   size_t cap);

/* The routing key of a device: its index in decimal, NUL-terminated, in a
 * buffer of at least 11 bytes.  Equal keys keep their order in partitioned
 * brokers.  Returns the length. */
int il_env_device_key(uint32_t dev, char *out);

/* Parse ISO-8601 "YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+hh:mm|-hh:mm]" (space also
 * accepted for 'T'; 0..9 fraction digits) into us since the epoch.  Returns 0
 * or IL_ENV_EMALFORMED. */
int il_env_parse_iso8601(const char *s, size_t len, int64_t *out_us);

/* Format us since the epoch as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (28 bytes with
 * the NUL).  Returns the length written (27), IL_ENV_ENOSPC if cap < 28, or
 * IL_ENV_EMALFORMED for years outside 0000..9999. */
int il_env_format_iso8601(int64_t us, char *out, size_t cap);

#endif
