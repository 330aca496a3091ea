"use strict";
/**
 * Local Cosmos DB API server for the test suite (@vercel/cosmosdb-server).
 *
 * Usage: node tests/support/cosmos_server.js [--port N] [--host H] [--exit-on-stdin-close]
 *                                            [--keep-alive]
 *
 * The port defaults to $COSMOS_SERVER_PORT, else 0 (ephemeral). Once the
 * server accepts connections, one line `LISTENING <port>` is written to
 * stdout. SIGTERM/SIGINT close the server and exit 0. With
 * --exit-on-stdin-close the server also exits when its stdin reaches EOF,
 * so it cannot outlive a test runner that was killed without cleanup.
 *
 * All data lives in memory: a restarted server is empty. By default every answer closes its
 * connection (the package's default); --keep-alive keeps connections open as Cosmos DB's
 * gateway does, for latency measurements.
 *
 * Test-only control endpoints (never part of the Cosmos DB API):
 *
 *   POST /_faults  {"status": 429, "count": 3, "retryAfterMs": 50}
 *                  answer the next 3 requests with that status (and x-ms-retry-after-ms)
 *                  {"reset": true, "count": 2}    destroy the socket of the next 2 requests
 *                  {"delayMs": 300, "count": 1}   hold the next request, then serve it
 *                  {"drop": true, "count": 1}     serve the next request (a write lands) but
 *                                                 destroy the socket instead of answering
 *                  Optional on every rule: "method" (e.g. "PUT") and "path" (a substring
 *                  of the URL) limit which requests it takes; "substatus" adds
 *                  x-ms-substatus. Without "count" a rule lasts until cleared, which
 *                  simulates an outage that keeps the data. Rules are taken in order.
 *                  {"clear": true}                drop every rule
 *   GET  /_faults  the rules still pending
 *   GET  /_requests     every Cosmos DB request served so far: {method, path, status, priority},
 *                       status 0 for a reset, -1 for a dropped answer
 *   DELETE /_requests   forget them
 */
const { randomUUID } = require("node:crypto");
const { parseArgs } = require("node:util");

/**
 * Version 1.0.1 of handler/read-document throws a TypeError (served as a 500)
 * when the document does not exist. Cosmos DB answers 404 NotFound, which the
 * SDK maps to CosmosResourceNotFoundError, so the handler is wrapped in the
 * require cache before lib/routes.js captures it.
 */
function patchReadDocument() {
  const readDocument = require("@vercel/cosmosdb-server/lib/handler/read-document");
  const { readOperation } = require("@vercel/cosmosdb-server/lib/handler/_document-operations");
  const { default: partitionFromHeader } = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");
  const original = readDocument.default;

  readDocument.default = (account, req, res, params) => {
    const collection = account.database(params.dbId).collection(params.collId);
    if (collection.read()) {
      const result = readOperation(collection, {
        partitionKey: partitionFromHeader(req),
        id: params.docId,
      });
      if (result.statusCode === 404) {
        res.statusCode = 404;
        return result.body;
      }
    }
    return original(account, req, res, params);
  };
}

/**
 * Version 1.0.1 runs the operations of a transactional batch with the partition key of each
 * operation's JSON, which the SDK never sends (Cosmos DB takes it from the request's header),
 * so every replace or upsert in a batch failed with a 500. They now take it from the item body,
 * as a single replace or upsert does. Read and delete in a batch are still unsupported, and a
 * failed batch is not rolled back (later operations answer 424 and are skipped).
 */
function patchBatchPartitionKeys() {
  const operations = require("@vercel/cosmosdb-server/lib/handler/_document-operations");
  for (const name of ["replaceOperation", "upsertOperation"]) {
    const original = operations[name];
    operations[name] = (collection, input) => {
      if (input && input.partitionKey === undefined && input.resourceBody) {
        const value = collection.documents._getPartition(input.resourceBody);
        return original(collection, { ...input, partitionKey: JSON.stringify([value]) });
      }
      return original(collection, input);
    };
  }
}

const CONTROL_PATHS = new Set(["/_faults", "/_requests"]);
const MAX_LOGGED_REQUESTS = 100000;
const STATUS_CODES = {
  408: "RequestTimeout",
  409: "Conflict",
  412: "PreconditionFailed",
  429: "TooManyRequests",
  449: "RetryWith",
  500: "InternalServerError",
  503: "ServiceUnavailable",
};

/**
 * Version 1.0.1 runs every query over every item of the container, even when the request names
 * one partition (the x-ms-documentdb-partitionkey header). Cosmos DB sends such a query to that
 * partition alone, so its cost does not grow with other people's data. Here too: items are also
 * kept per partition value, and a query that names a partition runs over that partition's
 * items only, and its text is parsed once (the package parsed every query twice, once uncached).
 * The answer is the same (the item set a partition-scoped query may see); only the work is.
 */
function patchPartitionScopedQueries() {
  const { default: Items } = require("@vercel/cosmosdb-server/lib/account/items");
  const { parsePartitionKey } = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");
  const { default: partitionFromHeader } = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");
  const queryDocuments = require("@vercel/cosmosdb-server/lib/handler/query-documents");
  const { default: readItems } = require("@vercel/cosmosdb-server/lib/handler/_read-items");
  const { default: readJson } = require("@vercel/cosmosdb-server/lib/json");
  const { default: trueHeader } = require("@vercel/cosmosdb-server/lib/true-header");

  const partitions = (items) => (items._byPartition ??= new Map());
  const originalSet = Items.prototype._set;
  Items.prototype._set = function set(data) {
    const stored = originalSet.call(this, data);
    const key = String(this._getPartition(data));
    if (!partitions(this).has(key)) partitions(this).set(key, new Map());
    partitions(this).get(key).set(data._rid, this._data.get(data._rid));
    return stored;
  };
  const originalDelete = Items.prototype.delete;
  Items.prototype.delete = function remove(idOrRid, partition) {
    const data = this._item("/id", idOrRid, partition).read();
    originalDelete.call(this, idOrRid, partition);
    if (data) partitions(this).get(String(this._getPartition(data)))?.delete(data._rid);
  };
  Items.prototype.queryPartition = function queryPartition(params, partition, options) {
    if (!this._parent.read()) return null;
    const inPartition = partitions(this).get(String(partition)) || new Map();
    const data = [...inPartition.values()].map((item) => item.read());
    const parent = this._parent.read();
    const compositeIndexes = (parent.indexingPolicy || {}).compositeIndexes || [];
    try {
      return this._getQuery(params.query).exec(data, {
        ...options,
        parameters: params.parameters,
        udf: this._userDefinedFunctions(),
        compositeIndexes,
      });
    } catch (err) {
      err.badRequest = true;
      throw err;
    }
  };

  const original = queryDocuments.default;
  queryDocuments.default = async (account, req, res, params) => {
    const header = partitionFromHeader(req);
    const crossPartition = trueHeader(req, "x-ms-documentdb-query-enablecrosspartition");
    if (header === undefined || crossPartition) return original(account, req, res, params);
    const partition = parsePartitionKey(header, undefined);
    return readItems(req, res, "Documents", async ({ continuation, maxItemCount }) => {
      const body = await readJson(req);
      if (!body.query) {
        res.statusCode = 400;
        return { message: "missing query" };
      }
      const collection = account.database(params.dbId).collection(params.collId);
      const { partitionKey } = collection.read() || {};
      const paths = (partitionKey || {}).paths || [];
      // Parsed once per query text (the package's own cache), not once per request: the
      // parse is what the package spent most of its time on, and Cosmos DB caches plans too.
      const query = collection.documents._getQuery(body.query);
      if (paths.length && !query.containsPartitionKeys(paths)) {
        res.statusCode = 400;
        return { message: "missing partition keys" };
      }
      try {
        return collection.documents.queryPartition(body, partition, { continuation, maxItemCount });
      } catch (err) {
        if (err.badRequest) {
          res.statusCode = 400;
          return { message: err.message };
        }
        throw err;
      }
    });
  };
}

/** Checks one fault rule from POST /_faults and returns it in the form the server keeps. */
function parseFault(body) {
  const rule = {
    status: body.status === undefined ? null : body.status,
    reset: body.reset === true,
    drop: body.drop === true,
    delayMs: body.delayMs === undefined ? 0 : body.delayMs,
    retryAfterMs: body.retryAfterMs === undefined ? null : body.retryAfterMs,
    substatus: body.substatus === undefined ? null : body.substatus,
    count: body.count === undefined || body.count === null ? null : body.count,
    method: body.method === undefined ? null : String(body.method).toUpperCase(),
    path: body.path === undefined ? null : String(body.path),
  };
  const isWhole = (n) => Number.isInteger(n) && n >= 0;
  if (rule.status !== null && !(Number.isInteger(rule.status) && rule.status >= 400 && rule.status < 600)) {
    throw new Error("status must be an HTTP error code (400-599)");
  }
  const kinds = [rule.status !== null, rule.reset, rule.drop].filter(Boolean).length;
  if (kinds > 1) throw new Error('"status", "reset" and "drop" exclude each other');
  if (kinds === 0 && rule.delayMs === 0) {
    throw new Error('a fault needs "status", "reset": true, "drop": true or "delayMs"');
  }
  for (const name of ["delayMs", "retryAfterMs", "substatus", "count"]) {
    if (rule[name] !== null && !isWhole(rule[name])) throw new Error(`${name} must be a whole number`);
  }
  if (rule.count === 0) throw new Error("count must be at least 1 (leave it out for no limit)");
  return rule;
}

/**
 * Wraps the Cosmos DB request listener so tests can inject throttling, errors, resets and
 * delays without stopping the server (which would lose its in-memory data), and can count
 * the requests an operation really made.
 */
function installFaultControl(server) {
  const listeners = server.listeners("request");
  server.removeAllListeners("request");
  const faults = [];
  let requests = [];

  const reply = (res, status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const control = (req, res, path) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      if (path === "/_requests") {
        if (req.method === "DELETE") requests = [];
        else if (req.method !== "GET") return reply(res, 405, { message: "GET or DELETE" });
        return reply(res, 200, { requests });
      }
      if (req.method === "GET") return reply(res, 200, { faults });
      if (req.method !== "POST") return reply(res, 405, { message: "GET or POST" });
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
        if (body.clear === true) faults.length = 0;
        else faults.push(parseFault(body));
      } catch (err) {
        return reply(res, 400, { message: err.message });
      }
      return reply(res, 200, { faults });
    });
  };

  const takeFault = (req) => {
    const index = faults.findIndex(
      (rule) =>
        (rule.method === null || rule.method === req.method) &&
        (rule.path === null || req.url.includes(rule.path)),
    );
    if (index < 0) return null;
    const rule = faults[index];
    if (rule.count !== null) {
      rule.count -= 1;
      if (rule.count <= 0) faults.splice(index, 1);
    }
    return rule;
  };

  const serve = (req, res) => listeners.forEach((listener) => listener.call(server, req, res));

  const injectStatus = (req, res, rule) => {
    req.resume();
    const headers = {
      "content-type": "application/json",
      "x-ms-activity-id": randomUUID(),
      "x-ms-request-charge": "0",
    };
    if (rule.retryAfterMs !== null) headers["x-ms-retry-after-ms"] = String(rule.retryAfterMs);
    if (rule.substatus !== null) headers["x-ms-substatus"] = String(rule.substatus);
    res.writeHead(rule.status, headers);
    res.end(JSON.stringify({ code: STATUS_CODES[rule.status] || "Error", message: "injected fault" }));
  };

  server.on("request", (req, res) => {
    const path = req.url.split("?")[0];
    if (CONTROL_PATHS.has(path)) return control(req, res, path);
    const priority = req.headers["x-ms-cosmos-priority-level"] || "";
    const entry = { method: req.method, path: req.url, status: 0, priority };
    if (requests.length < MAX_LOGGED_REQUESTS) requests.push(entry);
    res.on("finish", () => {
      entry.status = res.statusCode;
    });
    const rule = takeFault(req);
    if (rule === null) return serve(req, res);
    const act = () => {
      if (rule.reset) {
        req.socket.destroy();
      } else if (rule.status !== null) {
        injectStatus(req, res, rule);
      } else {
        if (rule.drop) {
          res.end = () => {
            entry.status = -1;
            req.socket.destroy();
            return res;
          };
        }
        serve(req, res);
      }
    };
    if (rule.delayMs > 0) setTimeout(act, rule.delayMs);
    else act();
  });
}

function main() {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: process.env.COSMOS_SERVER_PORT || "0" },
      host: { type: "string", default: "127.0.0.1" },
      "exit-on-stdin-close": { type: "boolean", default: false },
      "keep-alive": { type: "boolean", default: false },
    },
  });
  const port = Number.parseInt(values.port, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port: ${values.port}`);
  }

  patchReadDocument();
  patchBatchPartitionKeys();
  patchPartitionScopedQueries();
  const { createHttpsServer } = require("@vercel/cosmosdb-server");
  const server = createHttpsServer({ keepAlive: values["keep-alive"] });
  if (values["keep-alive"]) server.keepAliveTimeout = 60_000;
  installFaultControl(server);

  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  if (values["exit-on-stdin-close"]) {
    process.stdin.on("end", shutdown).on("error", shutdown).resume();
  }

  server.on("error", (err) => {
    console.error(err);
    process.exit(1);
  });
  server.listen(port, values.host, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
}

main();
