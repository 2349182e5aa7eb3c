import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitTableList } from './cdc-config.ts';
import { resolveServerConfig } from './config.ts';

const URL = 'postgres://capture@db:5432/shop';

function refused(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: { code?: string; message?: string }) => {
    assert.equal(error.code, 'BUSBAR_ERR_INVALID_ARGUMENT');
    assert.match(error.message!, pattern);
    return true;
  });
}

describe('the server\'s change capture options', () => {
  it('runs no capture unless cdcPostgres is set', () => {
    assert.equal(resolveServerConfig({}).cdc, undefined);
  });

  it('takes the database and tables from flags, in replication mode with the library\'s defaults', () => {
    const config = resolveServerConfig({ flags: { 'cdc-postgres': URL, 'cdc-tables': 'orders, sales."Order, Lines"' } });
    assert.deepEqual(config.cdc, { connectionString: URL, mode: 'replication', tables: ['orders', 'sales."Order, Lines"'] });
  });

  it('takes every option from BUSBAR_CDC_* variables and the config file too, flags winning', () => {
    const env = { BUSBAR_CDC_POSTGRES: URL, BUSBAR_CDC_ALL_TABLES: 'true', BUSBAR_CDC_SLOT: 'from_env', BUSBAR_CONFIG: 'busbar.json' };
    const file = JSON.stringify({ cdcPublication: 'from_file', cdcSnapshot: 'never', cdcSlot: 'from_file' });
    const config = resolveServerConfig({ env, readFile: () => file, flags: { 'cdc-slot': 'from_flag' } });
    assert.deepEqual(config.cdc, { connectionString: URL, mode: 'replication', allTables: true, slotName: 'from_flag', publicationName: 'from_file', snapshot: 'never' });
    assert.equal(config.origins.cdcPublication, 'config file busbar.json (key "cdcPublication")');
    const listed = resolveServerConfig({ env: { BUSBAR_CONFIG: 'busbar.json' }, readFile: () => JSON.stringify({ cdcPostgres: URL, cdcTables: ['a', 'b.c'] }) });
    assert.deepEqual(listed.cdc?.tables, ['a', 'b.c']);
  });

  it('gives trigger mode its reader name and Busbar schema instead of a slot', () => {
    const config = resolveServerConfig({
      flags: { 'cdc-postgres': URL, 'cdc-tables': 'orders', 'cdc-mode': 'trigger', 'cdc-slot': 'Reader One', 'cdc-trigger-schema': 'capture' },
    });
    assert.deepEqual(config.cdc, { connectionString: URL, mode: 'trigger', tables: ['orders'], trigger: { readerName: 'Reader One', schema: 'capture' } });
  });

  it('refuses capture options that cannot work, naming the option and where it came from', () => {
    refused(() => resolveServerConfig({ flags: { 'cdc-tables': 'orders' } }), /option "cdcTables" \(--cdc-tables\) needs "cdcPostgres"/);
    refused(() => resolveServerConfig({ flags: { 'cdc-postgres': URL } }), /option "cdcPostgres" \(--cdc-postgres\) needs "cdcTables" .* or "cdcAllTables"/);
    refused(
      () => resolveServerConfig({ flags: { 'cdc-postgres': URL, 'cdc-tables': 'a', 'cdc-all-tables': true } }),
      /option "cdcTables" \(--cdc-tables\) cannot be combined with "cdcAllTables" \(from --cdc-all-tables\)/,
    );
    refused(() => resolveServerConfig({ env: { BUSBAR_CDC_MODE: 'logical' } }), /option "cdcMode" \(BUSBAR_CDC_MODE\) must be replication or trigger, got "logical"/);
    refused(() => resolveServerConfig({ flags: { 'cdc-postgres': URL, 'cdc-all-tables': true, 'cdc-slot': 'My-Slot' } }), /option "cdcSlot" .* must be a replication slot name/);
    refused(() => resolveServerConfig({ flags: { 'cdc-postgres': URL, 'cdc-tables': ' , ' } }), /option "cdcTables" .* must be a comma-separated list of tables/);
    refused(() => resolveServerConfig({ flags: { 'cdc-postgres': 'mysql://db', 'cdc-tables': 'a' } }), /option "cdcPostgres" .* must be a postgres:\/\//);
  });

  it('splits a table list on commas outside double quotes', () => {
    assert.deepEqual(splitTableList('a,"b,c" , d."e ""f"", g",'), ['a', '"b,c"', 'd."e ""f"", g"']);
  });
});
