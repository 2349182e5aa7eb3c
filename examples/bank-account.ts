// Event sourcing: a bank account whose state is never stored, only its
// events. Commands go through decide (which may refuse them), events through
// evolve, appends check the stream's version, and a projection keeps a read
// model of every balance from a checkpoint.
import assert from 'node:assert/strict';
import { ConcurrencyError } from '../src/index.ts';
import { createMemoryStore } from '../src/store/memory/index.ts';
import {
  aggregateStream,
  type Decider,
  handleCommand,
  type StreamEvent,
} from '../src/event-sourcing/index.ts';

// Topic → data of each event an account records.
type AccountEvents = {
  'account.opened': { owner: string };
  'account.deposited': { amount: number };
  'account.withdrawn': { amount: number };
};
type Account = { open: boolean; owner: string; balance: number };
type AccountCommand =
  | { type: 'open'; owner: string }
  | { type: 'deposit'; amount: number }
  | { type: 'withdraw'; amount: number };

/** A refused command: the caller's mistake, not a failure of the store. */
class AccountError extends Error {
  override name = 'AccountError';
}

const bankAccount: Decider<Account, AccountCommand, AccountEvents> = {
  initialState: { open: false, owner: '', balance: 0 },
  // Pure: a new state from the old one and one event.
  evolve(state, event) {
    switch (event.type) {
      case 'account.opened':
        return { open: true, owner: event.data.owner, balance: 0 };
      case 'account.deposited':
        return { ...state, balance: state.balance + event.data.amount };
      case 'account.withdrawn':
        return { ...state, balance: state.balance - event.data.amount };
    }
  },
  // The business rules: throw to refuse, return the events to record.
  decide(command, state) {
    if (command.type === 'open') {
      if (state.open) throw new AccountError('the account is already open');
      return { type: 'account.opened', data: { owner: command.owner } };
    }
    if (!state.open) throw new AccountError('the account is not open');
    if (!(command.amount > 0)) throw new AccountError('an amount must be positive');
    if (command.type === 'deposit') {
      return { type: 'account.deposited', data: { amount: command.amount } };
    }
    if (command.amount > state.balance) {
      throw new AccountError(`insufficient funds: the balance is ${state.balance}`);
    }
    return { type: 'account.withdrawn', data: { amount: command.amount }, subject: 'atm-7' };
  },
};

const store = createMemoryStore();

await handleCommand(store, 'account-ada', { type: 'open', owner: 'Ada' }, bankAccount);
await handleCommand(store, 'account-ada', { type: 'deposit', amount: 100 }, bankAccount);
const withdrawal = await handleCommand(
  store,
  'account-ada',
  { type: 'withdraw', amount: 30 },
  bankAccount,
);
console.log('after the withdrawal:', withdrawal.newState, 'version', withdrawal.version);
assert.deepEqual(withdrawal.newState, { open: true, owner: 'Ada', balance: 70 });
assert.equal(withdrawal.version, 3);
assert.equal(withdrawal.newEvents[0]!.subject, 'atm-7');

// A refused command throws the domain error, and nothing is appended.
await assert.rejects(
  handleCommand(store, 'account-ada', { type: 'withdraw', amount: 500 }, bankAccount),
  (error) => {
    assert.ok(error instanceof AccountError);
    console.log('refused:', error.message);
    return true;
  },
);
await assert.rejects(
  handleCommand(store, 'account-ada', { type: 'open', owner: 'Eve' }, bankAccount),
  AccountError,
);
assert.equal(await store.streamVersion('account-ada'), 3);

// The balance is not stored anywhere: it is the events folded by evolve.
const ada = await aggregateStream(store, 'account-ada', bankAccount);
assert.deepEqual(ada, { state: { open: true, owner: 'Ada', balance: 70 }, version: 3 });

// Two deposits race: both read version 3, one appends first, and the other
// fails its expected version. Without retries that is a ConcurrencyError…
const race = (retries: number) =>
  Promise.allSettled(
    [10, 20].map((amount) =>
      handleCommand(store, 'account-ada', { type: 'deposit', amount }, { ...bankAccount, retries }),
    ),
  );
const [won, lost] = await race(0);
assert.equal(won.status, 'fulfilled');
assert.equal(lost.status, 'rejected');
assert.ok(lost.reason instanceof ConcurrencyError);
console.log(lost.reason.message);
assert.deepEqual([lost.reason.expected, lost.reason.actual], [3, 4]);
// …with retries (3 by default) the loser reloads, decides again and appends.
const settled = await race(3);
assert.deepEqual(
  settled.map((result) => result.status),
  ['fulfilled', 'fulfilled'],
);
assert.equal((await aggregateStream(store, 'account-ada', bankAccount)).state.balance, 70 + 10 + 30);

// A projection: a read model of every account's balance, kept up to date by
// reading the log after its checkpoint. It can be dropped and rebuilt from 0.
const balances = new Map<string, { owner: string; balance: number }>();
async function projectBalances(): Promise<number> {
  let checkpoint = (await store.loadCheckpoint('balances')) ?? 0;
  let applied = 0;
  for (;;) {
    const page = await store.readAll({ after: checkpoint, topics: ['account.*'] });
    if (page.last === checkpoint) return applied;
    for (const { stream, event } of page.events) {
      const account = event as StreamEvent<AccountEvents>;
      const row = balances.get(stream!) ?? { owner: '', balance: 0 };
      if (account.type === 'account.opened') row.owner = account.data.owner;
      if (account.type === 'account.deposited') row.balance += account.data.amount;
      if (account.type === 'account.withdrawn') row.balance -= account.data.amount;
      balances.set(stream!, row);
      applied++;
    }
    checkpoint = page.last;
    await store.saveCheckpoint('balances', checkpoint);
  }
}

assert.equal(await projectBalances(), 6);
await handleCommand(store, 'account-bob', { type: 'open', owner: 'Bob' }, bankAccount);
await handleCommand(store, 'account-bob', { type: 'deposit', amount: 5 }, bankAccount);
assert.equal(await projectBalances(), 2); // only what came after the checkpoint
console.log('read model:', Object.fromEntries(balances));
assert.deepEqual(Object.fromEntries(balances), {
  'account-ada': { owner: 'Ada', balance: 110 },
  'account-bob': { owner: 'Bob', balance: 5 },
});

await store.close();
