^XA
^CI28
^PW732
^LL472
^MNN
^LH0,0
^FO24,24^A0N,33,33^FH\^FDedgesense / EdgeSense-T2^FS
^FO24,71^A0N,29,29^FH\^FDSN SN-2026-000123^FS
^FO24,113^A0N,25,25^FH\^FDID mfrwg33vnz2xi3ltmvzxi^FS
^FO24,142^A0N,25,25^FH\^FDltemv3gszlfnfzgk2lemvzxi^FS
^FO24,170^A0N,25,25^FH\^FDltemv3g^FS
^FO24,241^A0N,21,21^FH\^FDdev mfrwg33vnz2xi3ltmvzxiltem^FS
^FO24,265^A0N,21,21^FH\^FDv3gszlfnfzgk2lemvzxiltemv3g^FS
^FO24,335^A0N,25,25^FH\^FD2026-11-26  batch WO-4711  tpm  fp 3f3f3f3f3f3f3f3f^FS
^FO440,138^BXN,5,200^FH\^FDrid=mfrwg33vnz2xi3ltmvzxiltemv3gszlfnfzgk2lemvzxiltemv3g;sn=SN-2026-000123;b=WO-4711;tp=3f3f3f3f3f3f3f3f^FS
^FO116,373^BY3^BCN,83,N,N,N,A^FH\^FDSN-2026-000123^FS
^PQ1
^XZ
