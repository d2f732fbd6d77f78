/*
 * payload.h - the content of the IoT message: templates and datasets.
 *
 * A load test is only as realistic as its messages.  The publisher's body
 * comes from one of:
 *
 *  - an inline template (IOTLAT_PAYLOAD) or a template file
 *    (IOTLAT_PAYLOAD_FILE ending in anything but .ndjson/.jsonl/.csv);
 *  - a dataset file replayed line by line: NDJSON (.ndjson, .jsonl: one JSON
 *    object per line) or CSV (.csv: the first line names the columns, each
 *    further line becomes an object {"col":value,...}, numbers stay numbers,
 *    everything else becomes a JSON string).  Device d's k-th message uses
 *    line (d + k) modulo the line count, so devices do not send in lockstep.
 *    Dataset lines may themselves contain placeholders.
 *
 * Placeholders, expanded per message:
 *   {{device}}           device index (0-based)
 *   {{device1}}          device index + 1
 *   {{seq}}              the device's sequence number
 *   {{rand:A:B}}         uniform random integer in [A, B] (A <= B, int64)
 *   {{randf:A:B}}        uniform random real in [A, B), 3 decimals
 *   {{choice:x|y|z}}     one of the listed words, uniformly
 *   {{hex:N}}            N random hex digits (1..64), e.g. a token
 *   {{now}}              ISO-8601 UTC time of the scheduled send, with us
 *   {{{{}}               a literal "{{"
 * Example reproducing the old tool's metro messages:
 *   {"Metro":{"CheckIn":{"Token":"{{hex:16}}","Station":{{rand:1:50}},
 *    "Device":"gate-{{device}}"}}}
 *
 * Templates are compiled once into a list of literal and placeholder parts;
 * expansion walks the list and writes into a caller buffer without
 * allocating.  Random values come from a per-template xorshift generator
 * seeded by the caller, so runs are reproducible.
 *
 * Memory: il_payload owns everything it allocates; il_payload_free releases
 * it.  Errors are written once into the caller's errbuf as one sentence that
 * names the offending text (file, line, placeholder).
 */
#ifndef IL_PAYLOAD_H
#define IL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define IL_PAYLOAD_EINVAL -1 /* bad template / dataset; errbuf says why */
#define IL_PAYLOAD_EIO -2    /* file cannot be read; errbuf says which */
#define IL_PAYLOAD_ENOSPC -3 /* expansion does not fit the output buffer */

typedef struct il_payload il_payload; /* opaque */

/* Compile an inline template.  Returns 0 and sets *out, or IL_PAYLOAD_EINVAL
 * with errbuf filled. */
int il_payload_from_template(const char *tmpl, uint64_t seed, il_payload **out,
                             char *errbuf, size_t errlen);

/* Load a template or dataset file (kind chosen by extension, see above).
 * Returns 0, IL_PAYLOAD_EIO or IL_PAYLOAD_EINVAL (with errbuf filled). */
int il_payload_from_file(const char *path, uint64_t seed, il_payload **out,
                         char *errbuf, size_t errlen);

/* Expand the body for device `dev`, sequence `seq`, scheduled at t_us.
 * Returns the length written (no NUL is added), or IL_PAYLOAD_ENOSPC. */
int il_payload_render(il_payload *p, uint32_t dev, uint64_t seq, int64_t t_us,
                      char *out, size_t cap);

/* 1 when every rendering is a JSON object text (always true for datasets;
 * for templates: the first and last non-blank bytes are a literal '{' and
 * '}', not part of a placeholder), else 0.  The JSON encoding needs an
 * object to put the envelope into. */
int il_payload_is_object(const il_payload *p);

/* Upper bound of one rendering's length (for buffer sizing). */
size_t il_payload_max_len(const il_payload *p);

void il_payload_free(il_payload *p);

#endif
