// Issue 4 §7 in replication mode: the shared fault suite (fault-suite.fixture.ts) on a private PostgreSQL.
import { describeFaultSuite } from './fault-suite.fixture.ts';

describeFaultSuite('replication');
