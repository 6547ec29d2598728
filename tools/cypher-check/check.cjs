#!/usr/bin/env node
// Checks Cypher statements with Neo4j's own Cypher 5 parser and semantic analyser
// (@neo4j-cypher/language-support: the ANTLR grammar of Neo4j plus Neo4j's front end compiled
// to JavaScript), without a Neo4j server.
//
// stdin (JSON):
//   {"queries": {"NAME": "cypher", ...},        // required
//    "labels": [...], "relationshipTypes": [...], // optional: warn on any other label / type
//    "cypherVersion": "CYPHER 5"}                 // optional, default "CYPHER 5"
// stdout (JSON):
//   {"checker": {"package": ..., "version": ..., "node": ..., "functionsChecked": bool},
//    "results": {"NAME": {"errors": [diag], "warnings": [diag], "parameters": [...]}}}
//   diag = {"message", "line" (1-based), "column" (1-based), "offset"}
// Exit status: 0 when every query is clean, 1 when any has an error or warning, 2 on bad input.
//
// Parameters are declared from the query itself (every $name it uses), so an undeclared
// parameter is never an error here; the query's parameter names are reported instead.
// Functions and procedures are checked against the built-in Neo4j 5 list the package ships
// (its testData.mockSchema, APOC excluded) when that list is present.
'use strict';

const pkg = require('@neo4j-cypher/language-support');
const fs = require('fs');
const path = require('path');
// package.json is not in the package's "exports": find it next to the resolved entry point.
const pkgJson = (() => {
  let dir = path.dirname(require.resolve('@neo4j-cypher/language-support'));
  while (!fs.existsSync(path.join(dir, 'package.json')) || !dir.endsWith('language-support')) {
    const up = path.dirname(dir);
    if (up === dir) return { name: '@neo4j-cypher/language-support', version: 'unknown' };
    dir = up;
  }
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
})();

function builtins(kind, version) {
  const all = pkg.testData?.mockSchema?.[kind]?.[version];
  if (!all) return undefined;
  const keep = {};
  for (const [name, spec] of Object.entries(all)) {
    if (!name.startsWith('apoc.')) keep[name] = spec;
  }
  return keep;
}

function diag(d) {
  return {
    message: d.message,
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
    offset: d.offsets ? d.offsets.start : null,
  };
}

function check(input) {
  const version = input.cypherVersion || 'CYPHER 5';
  const functions = builtins('functions', version);
  const procedures = builtins('procedures', version);
  const results = {};
  for (const [name, query] of Object.entries(input.queries)) {
    if (typeof query !== 'string' || query.trim() === '') {
      results[name] = {
        errors: [{ message: 'empty or non-string query', line: 1, column: 1, offset: 0 }],
        warnings: [],
        parameters: [],
      };
      continue;
    }
    const parameters = pkg.parseParameters(query, false);
    const schema = { defaultLanguage: version, parameters: {} };
    for (const p of parameters) schema.parameters[p] = null;
    if (functions) schema.functions = { [version]: functions };
    if (procedures) schema.procedures = { [version]: procedures };
    if (input.labels && input.relationshipTypes) {
      schema.labels = input.labels;
      schema.relationshipTypes = input.relationshipTypes;
    }
    const diags = pkg.lintCypherQuery(query, schema, false);
    results[name] = {
      errors: diags.filter((d) => d.severity === 1).map(diag),
      warnings: diags.filter((d) => d.severity !== 1).map(diag),
      parameters,
    };
  }
  return {
    checker: {
      package: pkgJson.name,
      version: pkgJson.version,
      node: process.version,
      cypherVersion: version,
      functionsChecked: Boolean(functions),
    },
    results,
  };
}

function main() {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    let input;
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (!input || typeof input.queries !== 'object') throw new Error('missing "queries" object');
    } catch (e) {
      process.stderr.write(`cypher-check: bad input: ${e.message}\n`);
      process.exit(2);
    }
    const out = check(input);
    process.stdout.write(JSON.stringify(out) + '\n');
    const dirty = Object.values(out.results).some((r) => r.errors.length || r.warnings.length);
    process.exitCode = dirty ? 1 : 0;
  });
}

main();
