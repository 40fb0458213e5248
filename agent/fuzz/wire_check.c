/*
 * wire_check.c - independent checks of the agent's answers (see wire_check.h).
 */
#include "wire_check.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD 8192u
#define MAX_DEPTH 6
#define MAX_ITEMS 64u

typedef struct reader {
    const uint8_t *p;
    size_t n;
    size_t i;
} reader_t;

static uint32_t crc32_bitwise(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static int head(reader_t *r, int *major, uint64_t *arg)
{
    if (r->i >= r->n) {
        return -1;
    }
    uint8_t first = r->p[r->i++];
    int info = first & 0x1F;
    *major = first >> 5;
    if (info < 24) {
        *arg = (uint64_t)info;
        return 0;
    }
    if (info > 27) {
        return -1; /* indefinite length or reserved */
    }
    size_t size = (size_t)1 << (info - 24);
    if (r->n - r->i < size) {
        return -1;
    }
    *arg = 0;
    for (size_t k = 0; k < size; k++) {
        *arg = (*arg << 8) | r->p[r->i++];
    }
    return 0;
}

static int utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t more;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i - 1 < more) {
            return 0;
        }
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((more == 1 && cp < 0x80) || (more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += more + 1;
    }
    return 1;
}

/* One item; depth counts containers above it (the top map's entries are at depth 1). */
static int item(reader_t *r, int depth, int *major_out, uint64_t *arg_out, size_t *at)
{
    int major;
    uint64_t arg;
    if (head(r, &major, &arg) != 0) {
        return -1;
    }
    *major_out = major;
    *arg_out = arg;
    *at = r->i;
    switch (major) {
    case 0:
    case 1:
        return 0;
    case 2:
    case 3:
        if (arg > r->n - r->i) {
            return -1;
        }
        if (major == 3 && !utf8_ok(r->p + r->i, (size_t)arg)) {
            return -1;
        }
        r->i += (size_t)arg;
        return 0;
    case 4:
    case 5:
        if (arg > MAX_ITEMS || depth > MAX_DEPTH) {
            return -1;
        }
        for (uint64_t k = 0; k < arg; k++) {
            int m;
            uint64_t a;
            size_t pos;
            if (major == 5 && (item(r, depth + 1, &m, &a, &pos) != 0 || m != 3)) {
                return -1; /* keys are text */
            }
            if (item(r, depth + 1, &m, &a, &pos) != 0) {
                return -1;
            }
        }
        return 0;
    case 7:
        return (arg == 20 || arg == 21 || arg == 22) && r->p[r->i - 1] == (0xE0 | arg) ? 0 : -1;
    default:
        return -1; /* tags */
    }
}

static int key_is(const reader_t *r, size_t at, uint64_t len, const char *name)
{
    return len == strlen(name) && memcmp(r->p + at, name, (size_t)len) == 0;
}

int check_message(const uint8_t *payload, size_t len, message_t *msg)
{
    reader_t r = {payload, len, 0};
    int major;
    uint64_t count;
    memset(msg, 0, sizeof *msg);
    if (head(&r, &major, &count) != 0 || major != 5 || count > MAX_ITEMS) {
        return -1;
    }
    msg->keys = (int)count;
    for (uint64_t k = 0; k < count; k++) {
        int km, vm;
        uint64_t klen, varg;
        size_t kat, vat;
        if (item(&r, 1, &km, &klen, &kat) != 0 || km != 3 || item(&r, 1, &vm, &varg, &vat) != 0) {
            return -1;
        }
        if (key_is(&r, kat, klen, "seq") && vm == 0) {
            msg->has_seq = 1;
            msg->seq = varg;
        } else if (key_is(&r, kat, klen, "st") && vm == 0) {
            msg->has_st = 1;
            msg->st = varg;
        } else if (key_is(&r, kat, klen, "res") && vm == 5) {
            msg->has_res = 1;
        } else if (key_is(&r, kat, klen, "msg") && vm == 3) {
            msg->has_msg = 1;
        } else if (key_is(&r, kat, klen, "op") && vm == 3) {
            size_t n = varg < sizeof msg->op - 1u ? (size_t)varg : sizeof msg->op - 1u;
            msg->has_op = 1;
            memcpy(msg->op, r.p + vat, n);
        }
    }
    return r.i == r.n ? 0 : -1; /* one item, nothing after it */
}

message_t check_answer(const uint8_t *payload, size_t len)
{
    message_t msg;
    if (len == 0 || len > MAX_PAYLOAD || check_message(payload, len, &msg) != 0) {
        abort();
    }
    if (!msg.has_seq || !msg.has_st || msg.keys != 3) {
        abort();
    }
    if (msg.st == 0 ? !msg.has_res : (!msg.has_msg || msg.st > 11)) {
        abort();
    }
    return msg;
}

size_t frame_encode(const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    uint32_t crc = crc32_bitwise(payload, len);
    size_t code_at = 0;
    size_t o = 1;
    uint8_t code = 1;
    if (cap < len + len / 254u + 6u) {
        abort();
    }
    for (size_t i = 0; i < len + 4u; i++) {
        uint8_t byte = i < len ? payload[i] : (uint8_t)(crc >> (8u * (i - len)));
        if (byte != 0) {
            out[o++] = byte;
            code++;
        }
        if (byte == 0 || code == 0xFF) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    out[o++] = 0x00;
    return o;
}

message_t check_answer_frame(const uint8_t *frame, size_t len)
{
    static uint8_t decoded[MAX_PAYLOAD + 4u + 64u];
    size_t out = 0;
    size_t i = 0;
    if (len < 2 || frame[len - 1] != 0x00) {
        abort();
    }
    len--; /* the delimiter */
    while (i < len) {
        uint8_t code = frame[i++];
        if (code == 0 || (size_t)code - 1u > len - i) {
            abort(); /* a 0x00 inside the frame, or a block running past its end */
        }
        for (uint8_t k = 1; k < code; k++) {
            if (frame[i] == 0 || out >= sizeof decoded) {
                abort();
            }
            decoded[out++] = frame[i++];
        }
        if (code != 0xFF && i < len) {
            if (out >= sizeof decoded) {
                abort();
            }
            decoded[out++] = 0;
        }
    }
    if (out < 5) {
        abort();
    }
    out -= 4;
    uint32_t crc = (uint32_t)decoded[out] | ((uint32_t)decoded[out + 1] << 8) |
                   ((uint32_t)decoded[out + 2] << 16) | ((uint32_t)decoded[out + 3] << 24);
    if (crc != crc32_bitwise(decoded, out)) {
        abort();
    }
    return check_answer(decoded, out);
}
