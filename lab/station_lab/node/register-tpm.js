'use strict';
// First registration of a lab TPM board with Microsoft's Node device SDK, over HTTPS.
//
// azure-iot-provisioning-device + azure-iot-provisioning-device-http + azure-iot-security-tpm,
// as a device maker's Node firmware uses them: the SDK reads (or creates) the EK and SRK in the
// TPM, sends them, answers DPS's 401 challenge by activating and importing the key in the TPM,
// and signs its SAS with it. The TPM is reached through tss.js in simulator mode, on the board's
// TPM bridge (lab/station_lab/firstboot/tpm_bridge.py).
//
// Input: one JSON object on stdin
//   {host, port, idScope, caFile, tpmHost, tpmPort}
// host is the provisioning host the SDK names (its TLS check uses it); port is the lab DPS's
// HTTPS port: DPS's device port is 443, so the lab's https.Agent dials the lab port instead,
// passed to the SDK through its own http.agent option. caFile is the lab CA bundle the SDK trusts.
// Output: one JSON line on stdout, {ok: true, result} or {ok: false, message, statusCode, body}.

const fs = require('fs');
const https = require('https');
const tls = require('tls');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http: ProvisioningTransport } = require('azure-iot-provisioning-device-http');
const { Http: HttpBase } = require('azure-iot-http-base');
const { TpmSecurityClient } = require('azure-iot-security-tpm');
const { Tpm } = require('tss.js');

function finish(answer, code) {
  process.stdout.write(JSON.stringify(answer) + '\n', () => process.exit(code));
}

const input = JSON.parse(fs.readFileSync(0, 'utf8'));

class LabPortAgent extends https.Agent {
  createConnection(options, callback) {
    return tls.connect({ ...options, port: input.port }, callback);
  }
}

const httpBase = new HttpBase();
httpBase.setOptions({
  ca: fs.readFileSync(input.caFile, 'utf8'),
  http: { agent: new LabPortAgent({ keepAlive: false }) },
});
const transport = new ProvisioningTransport(httpBase);
const security = new TpmSecurityClient(undefined, new Tpm(true, input.tpmHost, input.tpmPort));
const client = ProvisioningDeviceClient.create(input.host, input.idScope, transport, security);

client.register((err, result) => {
  if (err) {
    const response = err.response || {};
    finish(
      {
        ok: false,
        message: err.message || String(err),
        name: err.name || '',
        statusCode: response.statusCode || null,
        body: err.responseBody || (err.result ? JSON.stringify(err.result) : null),
      },
      1,
    );
    return;
  }
  finish({ ok: true, result }, 0);
});
