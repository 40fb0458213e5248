import time
from station.adapters.fleet.ledger import PostgresLedger
def test_smoke(ledger_dsn):
    t=time.time()
    led = PostgresLedger(ledger_dsn)
    led.install_schema()
    led.install_schema()
    print(led.acked("a"), time.time()-t)
    led.close()
