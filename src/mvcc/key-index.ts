import type { Revision } from "./revision.js";
import { compareRevisions } from "./revision.js";

/**
 * One generation of a key: the revisions from its creation up to and including
 * the delete (tombstone) that ends it. `version` counts every revision the
 * generation ever had, even those compaction has removed.
 */
interface Generation {
  version: number;
  created: Revision;
  revisions: Revision[];
}

/** Where a key stood at some revision. */
export interface KeyAtRevision {
  modified: Revision;
  created: Revision;
  version: number;
}

/**
 * The history of one key, as a list of generations; a delete closes the current
 * generation and opens an empty one.
 *
 * Example: key "foo" put at 1.0 and 2.0, deleted at 3.0, put again at 4.0 and 5.0
 * has generations {1.0, 2.0, 3.0(t)} and {4.0, 5.0}. Compacting at 2 keeps
 * {2.0, 3.0(t)} and {4.0, 5.0}; compacting at 4 drops the first generation
 * (nothing at or before 4 is visible through it) and keeps {4.0, 5.0}.
 */
export class KeyIndex {
  modified: Revision = { main: 0, sub: 0 };
  generations: Generation[] = [];

  constructor(readonly key: string) {}

  put(revision: Revision): void {
    if (compareRevisions(revision, this.modified) <= 0) {
      throw new Error(`put of ${this.key} at ${revision.main}.${revision.sub} not after ${this.modified.main}.${this.modified.sub}`);
    }
    const generation = this.generations[this.generations.length - 1];
    // Arrays start as one-element literals: an empty array grown by push
    // reserves room for 17, which for a million keys is hundreds of megabytes.
    if (generation === undefined) {
      this.generations = [{ version: 1, created: revision, revisions: [revision] }];
    } else if (generation.revisions.length === 0) {
      generation.created = revision;
      generation.revisions = [revision];
      generation.version++;
    } else {
      generation.revisions.push(revision);
      generation.version++;
    }
    this.modified = revision;
  }

  /** Records a delete; returns false (and changes nothing) when the key is not live. */
  tombstone(revision: Revision): boolean {
    const last = this.generations[this.generations.length - 1];
    if (last === undefined || last.revisions.length === 0) return false;
    this.put(revision);
    this.generations.push({ version: 0, created: revision, revisions: [] });
    return true;
  }

  /**
   * Starts the index of a key from its oldest record left in the backend.
   * Compaction may have removed the generation's earlier revisions, so its
   * creation and version come from the record itself, as etcd restores them.
   */
  restoreFirst(created: Revision, modified: Revision, version: number): void {
    if (this.generations.length !== 0) throw new Error(`key ${this.key} restored twice`);
    this.generations = [{ version, created, revisions: [modified] }];
    this.modified = modified;
  }

  isEmpty(): boolean {
    return this.generations.length === 1 && this.generations[0]!.revisions.length === 0;
  }

  /** The key as of `atRevision`, or undefined when it did not exist then. */
  get(atRevision: number): KeyAtRevision | undefined {
    const generation = this.findGeneration(atRevision);
    if (generation === undefined) return undefined;
    const revisions = generation.revisions;
    for (let index = revisions.length - 1; index >= 0; index--) {
      const revision = revisions[index]!;
      if (revision.main <= atRevision) {
        return { modified: revision, created: generation.created, version: generation.version - (revisions.length - index - 1) };
      }
    }
    return undefined;
  }

  /** Revisions with main >= `since`, one per main revision (the last sub of each). */
  since(sinceMain: number): Revision[] {
    const result: Revision[] = [];
    let lastMain = -1;
    for (const generation of this.generations) {
      for (const revision of generation.revisions) {
        if (revision.main < sinceMain) continue;
        if (revision.main === lastMain) result[result.length - 1] = revision;
        else result.push(revision);
        lastMain = revision.main;
      }
    }
    return result;
  }

  private findGeneration(atRevision: number): Generation | undefined {
    const lastIndex = this.generations.length - 1;
    for (let index = lastIndex; index >= 0; index--) {
      const generation = this.generations[index]!;
      const revisions = generation.revisions;
      if (revisions.length === 0) continue;
      // A closed generation whose tombstone is at or before atRevision hides the key.
      if (index !== lastIndex && revisions[revisions.length - 1]!.main <= atRevision) return undefined;
      if (revisions[0]!.main <= atRevision) return generation;
    }
    return undefined;
  }

  /**
   * Drops the revisions that compaction at `atRevision` makes unreachable, and
   * adds to `available` those it keeps at or below `atRevision`.
   */
  compact(atRevision: number, available: Set<string>): void {
    let [generationIndex, revisionIndex] = this.findCompactionPoint(atRevision, available);
    const generation = this.generations[generationIndex]!;
    if (generation.revisions.length > 0) {
      if (revisionIndex !== -1) generation.revisions = generation.revisions.slice(revisionIndex);
      // A generation left holding only its tombstone is gone entirely.
      if (generation.revisions.length === 1 && generationIndex !== this.generations.length - 1) {
        available.delete(revisionKey(generation.revisions[0]!));
        generationIndex++;
      }
    }
    this.generations = this.generations.slice(generationIndex);
  }

  /** Adds to `available` what compact(atRevision) would keep, changing nothing. */
  keep(atRevision: number, available: Set<string>): void {
    if (this.isEmpty()) return;
    const [generationIndex, revisionIndex] = this.findCompactionPoint(atRevision, available);
    const generation = this.generations[generationIndex]!;
    if (generation.revisions.length > 0 && revisionIndex === generation.revisions.length - 1 && generationIndex !== this.generations.length - 1) {
      available.delete(revisionKey(generation.revisions[revisionIndex]!));
    }
  }

  private findCompactionPoint(atRevision: number, available: Set<string>): [number, number] {
    let generationIndex = 0;
    // Skip the generations whose tombstone is at or before atRevision.
    while (generationIndex < this.generations.length - 1) {
      const revisions = this.generations[generationIndex]!.revisions;
      if (revisions[revisions.length - 1]!.main > atRevision) break;
      generationIndex++;
    }
    const revisions = this.generations[generationIndex]!.revisions;
    for (let index = revisions.length - 1; index >= 0; index--) {
      const revision = revisions[index]!;
      if (revision.main <= atRevision) {
        available.add(revisionKey(revision));
        return [generationIndex, index];
      }
    }
    return [generationIndex, -1];
  }
}

/** A revision as a map key. */
export function revisionKey(revision: Revision): string {
  return `${revision.main}.${revision.sub}`;
}
