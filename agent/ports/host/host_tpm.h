/*
 * host_tpm.h - the HAL's TPM transport on the host: swtpm in chardev mode on a socket pair
 * (no socket files, no ports to collide), made once with swtpm_setup.
 */
#ifndef HOST_TPM_H
#define HOST_TPM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct host_tpm {
    pid_t pid;
    int data;
    int ctrl;
} host_tpm_t;

/* Manufacture the TPM in dir with swtpm_setup (setup_config; once, when dir has no state) and
 * start swtpm on it. Logs go to swtpm_setup.log and swtpm.log in the current folder. 0 or -1. */
int host_tpm_start(host_tpm_t *tpm, const char *dir, const char *setup_config);

/* One raw TPM command and its complete response; AGENT_ST_OK or AGENT_ST_TPM_FAILURE. */
int host_tpm_transmit(host_tpm_t *tpm, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t cap,
                      size_t *rsp_len);

/* Save the TPM state and stop swtpm (CMD_SHUTDOWN; killed if it lingers). */
void host_tpm_stop(host_tpm_t *tpm);

#endif /* HOST_TPM_H */
