#!/usr/bin/env node
// MBC CQRS Serverless's published core package (@mbc-cqrs-serverless/core, the exact
// version in package.json) driven against DynamoDB tables, for tests/test_mbc_interop.py.
//
//   node mbc.js            # DYNAMODB_ENDPOINT=http://127.0.0.1:PORT (AWS_* credentials, AWS_REGION)
//                          # S3_ENDPOINT, S3_BUCKET_NAME, ATTRIBUTE_LIMIT_SIZE: large attributes
//
// Requests are JSON lines on stdin, answers JSON lines on stdout prefixed with "@@mbc "
// (anything else on stdout is not an answer): {"id": 1, "op": "publish", ...} gets
// "@@mbc {"id": 1, "ok": true, "result": ...}" or {"id": 1, "ok": false, "error":
// {"name": ..., "message": ...}}.
//
// MBC's classes are wired by hand as its CommandModule wires them (Nest's injector left
// out; SNS is a recorder; S3 is MBC's S3Service, at S3_ENDPOINT, which keeps attributes
// over ATTRIBUTE_LIMIT_SIZE bytes in S3_BUCKET_NAME). A table prefix "<env>-<app>-"
// is MBC's `${NODE_ENV}-${APP_NAME}-`, so MBC names exactly our tables.
//
// ops:
//   publish        {prefix, module, input, user, source?} -> CommandService.publishAsync
//   publishPartial {prefix, module, input, user, source?} -> publishPartialUpdateAsync
//   project        {prefix, module, record} -> MBC's own projection of one command: the
//                  stream record's NewImage is put into <prefix><module>-command, then the
//                  data-sync state machine's steps run in order through MBC's
//                  CommandEventHandler (check_version, set_ttl_command, history_copy,
//                  transform_data, sync_data per handler, finish). Result: the step results.
'use strict'

require('reflect-metadata')
const readline = require('node:readline')
const { Logger } = require('@nestjs/common')
const { PutItemCommand } = require('@aws-sdk/client-dynamodb')

const dist = (path) => require(`@mbc-cqrs-serverless/core/dist/${path}`)
const { DynamoDbService } = dist('data-store/dynamodb.service')
const { CommandService } = dist('commands/command.service')
const { CommandEventHandler } = dist('commands/command.event.handler')
const { DataService } = dist('commands/data.service')
const { HistoryService } = dist('commands/history.service')
const { TtlService } = dist('commands/ttl.service')
const { DataSyncDdsHandler } = dist('commands/handlers/data-sync-dds.handler')
const { DataSyncCommandSfnEvent } = dist('command-events/data-sync.sfn.event')
const { S3Service } = dist('data-store/s3.service')

Logger.overrideLogger(false) // MBC logs every step at debug level on stdout
const ENDPOINT = process.env.DYNAMODB_ENDPOINT
const REGION = process.env.AWS_REGION || 'ap-northeast-1'
if (!ENDPOINT) {
  process.stderr.write('mbc.js: set DYNAMODB_ENDPOINT\n')
  process.exit(2)
}

const wired = new Map()

/** MBC's services for one table prefix and module, wired as CommandModule.register does. */
function services(prefix, module) {
  const key = `${prefix}\u0000${module}`
  if (wired.has(key)) return wired.get(key)
  const match = /^([^-]+)-(.+)-$/.exec(prefix)
  if (!match) throw new Error(`prefix ${prefix} is not "<env>-<app>-"`)
  const settings = {
    NODE_ENV: match[1],
    APP_NAME: match[2],
    DYNAMODB_ENDPOINT: ENDPOINT,
    DYNAMODB_REGION: REGION,
    S3_ENDPOINT: process.env.S3_ENDPOINT,
    S3_REGION: REGION,
    S3_BUCKET_NAME: process.env.S3_BUCKET_NAME,
    ATTRIBUTE_LIMIT_SIZE: Number(process.env.ATTRIBUTE_LIMIT_SIZE || Infinity),
  }
  const config = { get: (name) => settings[name] }
  const s3 = new S3Service(config)
  const sns = { published: [], publish: async (message) => sns.published.push(message) }
  const ddb = new DynamoDbService(config, s3)
  const options = { tableName: module }
  const data = new DataService(options, ddb)
  const ttl = new TtlService(options, ddb)
  const history = new HistoryService(options, ddb, data, ttl)
  const dds = new DataSyncDdsHandler(data)
  const explorer = { exploreDataSyncHandlers: () => ({ dataSyncHandlers: [] }) }
  const moduleRef = { get: () => undefined }
  const commands = new CommandService(options, ddb, explorer, moduleRef, sns, dds, data, ttl)
  commands.onModuleInit() // the default handler: DataSyncDdsHandler
  const events = new CommandEventHandler(options, commands, data, history, s3, sns, config)
  const table = commands.tableName
  if (table !== `${prefix}${module}-command`) throw new Error(`MBC names it ${table}`)
  const s = { ddb, commands, events, table }
  wired.set(key, s)
  return s
}

/** The invokeContext MBC reads the author from (API Gateway's JWT claims, source IP). */
function invokeContext(user) {
  return {
    event: {
      requestContext: {
        http: { sourceIp: user.ip },
        authorizer: { jwt: { claims: { sub: user.id, 'custom:tenant': user.tenant } } },
      },
    },
    context: { awsRequestId: user.requestId },
  }
}

async function publish(req, partial) {
  const { commands } = services(req.prefix, req.module)
  const options = { invokeContext: invokeContext(req.user), source: req.source }
  return partial
    ? commands.publishPartialUpdateAsync(req.input, options)
    : commands.publishAsync(req.input, options)
}

async function project(req) {
  const { ddb, events, table } = services(req.prefix, req.module)
  const record = req.record
  await ddb.client.send(new PutItemCommand({ TableName: table, Item: record.dynamodb.NewImage }))
  const execution = {
    ...record,
    source: `arn:aws:dynamodb:${REGION}:000000000000:table/${table}/stream/interop`,
  }
  const step = (name, input) =>
    events.execute(
      new DataSyncCommandSfnEvent({
        input,
        context: {
          Execution: { Id: `interop-${Date.now()}`, Input: execution },
          State: { Name: name },
          StateMachine: { Id: 'interop' },
        },
      }),
    )
  const steps = {}
  steps.check_version = await step('check_version', {})
  if (steps.check_version.result !== 0) return steps // the state machine waits (1) or fails (-1)
  steps.set_ttl_command = await step('set_ttl_command', steps.check_version)
  steps.history_copy = await step('history_copy', steps.set_ttl_command)
  steps.transform_data = await step('transform_data', steps.history_copy)
  steps.sync_data = []
  for (const handler of steps.transform_data) {
    await step('sync_data', handler)
    steps.sync_data.push(handler.result)
  }
  steps.finish = await step('finish', steps.sync_data)
  return steps
}

const OPS = {
  publish: (req) => publish(req, false),
  publishPartial: (req) => publish(req, true),
  project,
}

function answer(message) {
  process.stdout.write(`@@mbc ${JSON.stringify(message)}\n`)
}

const lines = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  if (!line.trim()) return
  queue = queue.then(async () => {
    let req
    try {
      req = JSON.parse(line)
      const op = OPS[req.op]
      if (!op) throw new Error(`unknown op ${req.op}`)
      answer({ id: req.id, ok: true, result: (await op(req)) ?? null })
    } catch (error) {
      answer({
        id: req?.id ?? null,
        ok: false,
        error: { name: error?.name ?? 'Error', message: String(error?.message ?? error) },
      })
    }
  })
})
