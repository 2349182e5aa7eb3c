// Issue 4 §7 in trigger mode: the same fault suite as replication mode (fault-suite.fixture.ts) on a private PostgreSQL.
import { describeFaultSuite } from './fault-suite.fixture.ts';

describeFaultSuite('trigger');
