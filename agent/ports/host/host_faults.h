/*
 * host_faults.h - the lab's fault injection for the host port, parsed from the same --faults
 * text as the Python boards (station/lab/boards/faults.py). Faults that belong to the lab
 * runner (clone) are accepted and ignored here.
 */
#ifndef HOST_FAULTS_H
#define HOST_FAULTS_H

#include <stdint.h>

typedef struct host_faults {
    double flip;
    double drop;
    double garbage;
    long unplug_after;
    char unplug_at[17];
    char mute_once[17];
    double slow_tpm;
    int tpm_failure;
    int tpm_lockout;
    long bad_tpm_rsp;
    int stuck_key;
    int no_p384; /* a secure element without P-384: no operational key */
    int no_serial;
    uint64_t seed;
} host_faults_t;

/* Parse text into faults; returns 0, or -1 with a reason in err (err_cap bytes). */
int host_faults_parse(const char *text, host_faults_t *faults, char *err, unsigned err_cap);

/* xorshift64*: the noise generator (seeded from faults.seed, or the clock when 0). */
uint64_t host_random(uint64_t *state);
/* A uniform double in [0, 1). */
double host_uniform(uint64_t *state);

#endif /* HOST_FAULTS_H */
