/**
 * The raft simulator's command line.
 *
 *   npm run sim -- --seeds 1..10000          run a range of seeds, report failures
 *   npm run sim -- --seed 42 --trace         replay one seed with a readable trace
 *   npm run sim -- --seeds 1..500 --fault grantMultipleVotesPerTerm
 *                                            run with a deliberately broken rule
 */
import { runSeed } from "../src/raft/sim/simulation.js";
import type { TestingFaults } from "../src/raft/config.js";

interface Arguments {
  first: number;
  last: number;
  trace: boolean;
  faults: TestingFaults;
  stopOnFailure: boolean;
}

const faultNames = ["commitEntriesOfEarlierTerms", "grantMultipleVotesPerTerm", "ignoreLogWhenVoting"] as const;

function usage(message: string): never {
  console.error(`${message}\nusage: sim (--seed N | --seeds A..B) [--trace] [--fault ${faultNames.join("|")}] [--stop-on-failure]`);
  process.exit(2);
}

function parseArguments(argv: string[]): Arguments {
  const result: Arguments = { first: 1, last: 100, trace: false, faults: {}, stopOnFailure: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--seed") {
      const seed = Number(argv[++i]);
      if (!Number.isInteger(seed)) usage("--seed needs an integer");
      result.first = result.last = seed;
    } else if (arg === "--seeds") {
      const match = /^(\d+)\.\.(\d+)$/.exec(argv[++i] ?? "");
      if (match === null) usage("--seeds needs A..B");
      result.first = Number(match[1]);
      result.last = Number(match[2]);
    } else if (arg === "--trace") {
      result.trace = true;
    } else if (arg === "--stop-on-failure") {
      result.stopOnFailure = true;
    } else if (arg === "--fault") {
      const name = argv[++i] as (typeof faultNames)[number];
      if (!faultNames.includes(name)) usage(`unknown fault ${name}`);
      result.faults[name] = true;
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  if (result.last < result.first) usage("empty seed range");
  return result;
}

function main(): void {
  const args = parseArguments(process.argv.slice(2));
  const started = process.hrtime.bigint();
  const failures: number[] = [];
  let ran = 0;
  for (let seed = args.first; seed <= args.last; seed++) {
    const result = runSeed({ seed, trace: args.trace, testingFaults: args.faults });
    ran++;
    if (args.trace) for (const line of result.trace) console.log(line);
    if (!result.ok) {
      failures.push(seed);
      console.log(`seed ${seed} FAILED: ${result.failure}`);
      if (args.stopOnFailure) break;
    } else if (args.first === args.last) {
      console.log(`seed ${seed} ok: ${result.ticks} ticks, ${result.nodeCount} nodes, ${JSON.stringify(result.stats)}`);
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`${ran} seeds run in ${seconds.toFixed(1)} s, ${failures.length} failed${failures.length > 0 ? `: ${failures.slice(0, 50).join(" ")}` : ""}`);
  if (failures.length > 0) {
    console.log(`replay one with: npm run sim -- --seed ${failures[0]} --trace`);
    process.exit(1);
  }
}

main();
