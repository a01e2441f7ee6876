// A headless WatermelonDB phone: the real @nozbe/watermelondb client (LokiJS adapter, in memory) syncing with
// the Groundwork server through `synchronize()`, driven step by step by pytest over JSON lines.
//
//   BASE_URL=http://127.0.0.1:8123 TOKEN=<access jwt> node driver.mjs
//
// stdin: one command per line; stdout: exactly one JSON line per command (plus a first {ok, ready} line once
// the database is open). Commands:
//   {op: "sync", twice?, lose_answer?}     -> {ok, last_pulled_at}   (faults: see sync())
//   {op: "create", table, raw: {id, ...}}  -> {ok, id}       a record created locally (status "created")
//   {op: "update", table, id, raw: {...}}  -> {ok, id}       columns edited locally (listed in `_changed`)
//   {op: "dump"}                           -> {ok, tables: {table: [raw rows, with _status and _changed]}}
//   {op: "token", token}                   -> {ok}           the bearer token to use from now on
//   {op: "url", url}                       -> {ok}           the server to sync with from now on
//   {op: "exit"}                           -> {ok}           and the process ends
// Any failure answers {ok: false, error} and the driver keeps going. A command may carry `seq`: it is echoed.
// Runs on Node 18+ (global fetch). Everything WatermelonDB or LokiJS logs goes to stderr: stdout is the protocol.

import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { format } from 'node:util'

for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
  console[level] = (...args) => process.stderr.write(`[${level}] ${format(...args)}\n`)
}

const require = createRequire(import.meta.url)
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')

let BASE_URL = (process.env.BASE_URL || process.argv[2] || '').replace(/\/+$/, '')
let token = process.env.TOKEN || process.argv[3] || ''
if (!BASE_URL) {
  process.stderr.write('driver.mjs: BASE_URL is required (env or first argument)\n')
  process.exit(2)
}

// -- the app's schema (version 1): exactly the columns the server serves ------------------------------------------

const s = (name, isOptional = false) => ({ name, type: 'string', isOptional })
const n = (name, isOptional = false) => ({ name, type: 'number', isOptional })
const b = (name, isOptional = false) => ({ name, type: 'boolean', isOptional })

const COLUMNS = {
  pois: [s('name'), s('category'), s('address'), s('phone', true), n('lat'), n('lon'), s('holder_id', true),
    s('holder_name', true)],
  work_items: [s('campaign_id'), s('poi_id'), s('assignee_id'), s('status'), s('notes'), s('answers'), s('outcome'),
    s('campaign_title'), s('campaign_type'), s('campaign_instructions'), s('campaign_goal'), s('campaign_form'),
    s('campaign_offer', true), n('starts_at'), n('ends_at'), s('time_zone'), n('updated_at'), n('removed_at', true)],
  visits: [s('poi_id'), s('user_id'), s('status'), s('note', true), n('checked_in_at'), n('checked_out_at', true),
    n('in_lat'), n('in_lon'), n('in_accuracy_m'), n('in_captured_at'), b('in_is_mock'), s('in_status', true),
    n('in_confidence', true), n('in_distance_m', true), s('in_reasons', true),
    n('out_lat', true), n('out_lon', true), n('out_accuracy_m', true), n('out_captured_at', true),
    b('out_is_mock', true), s('out_status', true), n('out_confidence', true), n('out_distance_m', true),
    s('out_reasons', true)],
  leads: [s('poi_name'), s('state'), s('how', true), s('holder_id', true), n('since', true), n('last_visit_at', true),
    n('extensions_used'), n('extended_days'), n('release_at', true), s('release_cause', true), n('warn_from', true),
    b('warning')],
}

const schema = appSchema({
  version: 1,
  tables: Object.entries(COLUMNS).map(([name, columns]) => tableSchema({ name, columns })),
})

// -- models without decorators: accessors over _getRaw/_setRaw ------------------------------------------------------

const camel = (column) => column.replace(/_([a-z])/g, (_, c) => c.toUpperCase())

function modelFor(table) {
  const M = class extends Model {}
  M.table = table
  for (const { name } of COLUMNS[table]) {
    // `updatedAt` would make WatermelonDB stamp the phone's clock on every edit: work_items.updated_at is the
    // server's, so its accessor has another name.
    const property = name === 'updated_at' ? 'serverUpdatedAt' : camel(name)
    Object.defineProperty(M.prototype, property, {
      get() {
        return this._getRaw(name)
      },
      set(value) {
        this._setRaw(name, value)
      },
    })
  }
  Object.defineProperty(M, 'name', { value: `${camel(`_${table}`)}Model` })
  return M
}

const adapter = new LokiJSAdapter({
  schema,
  dbName: 'groundwork-e2e',
  useWebWorker: false,
  useIncrementalIndexedDB: true, // no IndexedDB in Node: Loki falls back to its in-memory adapter
  extraLokiOptions: { autosave: false },
  onSetUpError: (error) => process.stderr.write(`LokiJSAdapter set-up failed: ${error}\n`),
})
const database = new Database({ adapter, modelClasses: Object.keys(COLUMNS).map(modelFor) })

// -- the two sync endpoints ------------------------------------------------------------------------------------

async function call(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      Accept: 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  // The exchange, on stderr (pytest shows its tail when a step fails); whole bodies with DRIVER_TRACE=1.
  const trace = process.env.DRIVER_TRACE === '1'
  process.stderr.write(
    `[http] ${method} ${url} -> ${response.status} (${text.length} bytes)\n` +
      (trace && body !== undefined ? `[http]   sent: ${JSON.stringify(body)}\n` : '') +
      (trace ? `[http]   got: ${text}\n` : ''),
  )
  if (!response.ok) {
    throw new Error(`${method} ${url} -> HTTP ${response.status}: ${text}`)
  }
  return text ? JSON.parse(text) : {}
}

// Faults, for the simulated fleet (tests/watermelon/test_fleet_wm.py): `twice` sends the push twice at once (a
// retry racing the original); `loseAnswer` pushes, then fails as if the answer never came back.
async function sync({ twice = false, loseAnswer = false } = {}) {
  let pulledAt = null
  await synchronize({
    database,
    sendCreatedAsUpdated: true,
    pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
      const url =
        `${BASE_URL}/v1/sync/watermelon?last_pulled_at=${lastPulledAt}&schema_version=${schemaVersion}` +
        `&migration=${encodeURIComponent(JSON.stringify(migration))}`
      const { changes, timestamp } = await call('GET', url)
      pulledAt = timestamp
      return { changes, timestamp }
    },
    pushChanges: async ({ changes, lastPulledAt }) => {
      const url = `${BASE_URL}/v1/sync/watermelon?last_pulled_at=${lastPulledAt}`
      await Promise.all((twice ? [1, 2] : [1]).map(() => call('POST', url, { changes })))
      if (loseAnswer) throw new Error('the push answer was lost (a fault of the test)')
    },
  })
  return { last_pulled_at: pulledAt }
}

// -- local edits, as the app makes them ------------------------------------------------------------------------

function columnsOf(table) {
  const columns = COLUMNS[table]
  if (!columns) throw new Error(`unknown table ${JSON.stringify(table)}`)
  return new Set(columns.map((c) => c.name))
}

function setColumns(record, table, raw) {
  const known = columnsOf(table)
  for (const [column, value] of Object.entries(raw)) {
    if (column === 'id') continue
    if (!known.has(column)) throw new Error(`${table} has no column ${column}`)
    record._setRaw(column, value)
  }
}

async function create(table, raw) {
  if (!raw || typeof raw.id !== 'string') throw new Error('create needs raw.id')
  columnsOf(table)
  const record = await database.write(() =>
    database.get(table).create((r) => {
      r._raw.id = raw.id
      setColumns(r, table, raw)
    }),
  )
  return { id: record.id }
}

async function update(table, id, raw) {
  columnsOf(table)
  await database.write(async () => {
    const record = await database.get(table).find(id)
    await record.update((r) => setColumns(r, table, raw))
  })
  return { id }
}

async function dump() {
  const tables = {}
  for (const table of Object.keys(COLUMNS)) {
    const records = await database.get(table).query().fetch()
    tables[table] = records.map((r) => ({ ...r._raw })).sort((x, y) => (x.id < y.id ? -1 : 1))
  }
  return { tables }
}

const COMMANDS = {
  sync: (c) => sync({ twice: Boolean(c.twice), loseAnswer: Boolean(c.lose_answer) }),
  create: (c) => create(c.table, c.raw),
  update: (c) => update(c.table, c.id, c.raw),
  dump: () => dump(),
  token: (c) => {
    if (typeof c.token !== 'string' || !c.token) throw new Error('token needs a non-empty token')
    token = c.token
    return {}
  },
  url: (c) => {
    if (typeof c.url !== 'string' || !c.url) throw new Error('url needs a non-empty url')
    BASE_URL = c.url.replace(/\/+$/, '')
    return {}
  },
  exit: () => ({}),
}

function answer(message) {
  return new Promise((resolve) => process.stdout.write(`${JSON.stringify(message)}\n`, resolve))
}

async function main() {
  await database.get('pois').query().fetchCount() // the adapter is open and the schema set up
  await answer({ ok: true, ready: true, node: process.version })
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line.trim()) continue
    let command
    try {
      command = JSON.parse(line)
    } catch (error) {
      await answer({ ok: false, error: `not JSON: ${error.message}` })
      continue
    }
    const seq = command.seq === undefined ? {} : { seq: command.seq }
    const run = COMMANDS[command.op]
    if (!run) {
      await answer({ ok: false, ...seq, error: `unknown op ${JSON.stringify(command.op)}` })
      continue
    }
    try {
      const result = await run(command)
      await answer({ ok: true, ...seq, ...result })
    } catch (error) {
      await answer({ ok: false, ...seq, error: String((error && error.stack) || error) })
    }
    if (command.op === 'exit') break
  }
  process.exit(0)
}

main().catch((error) => {
  process.stderr.write(`driver.mjs failed: ${(error && error.stack) || error}\n`)
  process.exit(1)
})
