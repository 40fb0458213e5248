/*
 * host_faults.c - parsing of the lab's --faults text for C boards.
 */
#define _POSIX_C_SOURCE 200809L
#include "host_faults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const OPERATIONS[] = {"hello", "tpm",   "keygen", "csr",  "sign",
                                         "write", "read",  "lock",   "reset"};

static int is_operation(const char *value)
{
    size_t i;
    for (i = 0; i < sizeof OPERATIONS / sizeof OPERATIONS[0]; i++) {
        if (strcmp(value, OPERATIONS[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int parse_probability(const char *value, double max, double *out)
{
    char *end = NULL;
    double number = strtod(value, &end);
    if (end == value || *end != '\0' || !(number >= 0.0 && number <= max)) {
        return -1;
    }
    *out = number;
    return 0;
}

static int parse_count(const char *value, long *out)
{
    char *end = NULL;
    long number = strtol(value, &end, 10);
    if (end == value || *end != '\0' || number < 0) {
        return -1;
    }
    *out = number;
    return 0;
}

static int parse_flag(const char *value)
{
    return !(strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0);
}

static int parse_item(char *item, host_faults_t *f)
{
    char *value = strchr(item, '=');
    long count = 0;
    if (value != NULL) {
        *value++ = '\0';
    } else {
        value = item + strlen(item); /* "" */
    }
    if (strcmp(item, "flip") == 0) {
        return parse_probability(value, 1.0, &f->flip);
    }
    if (strcmp(item, "drop") == 0) {
        return parse_probability(value, 1.0, &f->drop);
    }
    if (strcmp(item, "garbage") == 0) {
        return parse_probability(value, 1.0, &f->garbage);
    }
    if (strcmp(item, "slow_tpm") == 0) {
        return parse_probability(value, 100.0, &f->slow_tpm);
    }
    if (strcmp(item, "unplug_after") == 0) {
        return parse_count(value, &f->unplug_after);
    }
    if (strcmp(item, "bad_tpm_rsp") == 0) {
        return parse_count(value, &f->bad_tpm_rsp);
    }
    if (strcmp(item, "seed") == 0) {
        if (parse_count(value, &count) != 0) {
            return -1;
        }
        f->seed = (uint64_t)count;
        return 0;
    }
    if (strcmp(item, "unplug_at") == 0 || strcmp(item, "mute_once") == 0) {
        if (!is_operation(value)) {
            return -1;
        }
        strcpy(item[0] == 'u' ? f->unplug_at : f->mute_once, value);
        return 0;
    }
    if (strcmp(item, "tpm_failure") == 0) {
        f->tpm_failure = parse_flag(value);
        return 0;
    }
    if (strcmp(item, "tpm_lockout") == 0) {
        f->tpm_lockout = parse_flag(value);
        return 0;
    }
    if (strcmp(item, "stuck_key") == 0) {
        f->stuck_key = parse_flag(value);
        return 0;
    }
    if (strcmp(item, "no_p384") == 0) {
        f->no_p384 = parse_flag(value);
        return 0;
    }
    if (strcmp(item, "no_serial") == 0) {
        f->no_serial = parse_flag(value);
        return 0;
    }
    if (strcmp(item, "clone") == 0) {
        return 0; /* the runner copies the TPM state; nothing to do in the board */
    }
    return -2;
}

int host_faults_parse(const char *text, host_faults_t *faults, char *err, unsigned err_cap)
{
    char buf[512];
    char *save = NULL;
    char *item;
    memset(faults, 0, sizeof *faults);
    if (strlen(text) >= sizeof buf) {
        snprintf(err, err_cap, "fault text too long");
        return -1;
    }
    strcpy(buf, text);
    for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char name[64];
        int st;
        while (*item == ' ') {
            item++;
        }
        snprintf(name, sizeof name, "%s", item);
        st = parse_item(item, faults);
        if (st == -2) {
            snprintf(err, err_cap, "unknown or unsupported fault '%s' for C boards", name);
            return -1;
        }
        if (st != 0) {
            snprintf(err, err_cap, "fault '%s' has a bad value", name);
            return -1;
        }
    }
    return 0;
}

uint64_t host_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double host_uniform(uint64_t *state)
{
    return (double)(host_random(state) >> 11) / 9007199254740992.0;
}
