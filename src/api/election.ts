import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { campaign, currentLeader, observe, proclaim, resign, type Leadership } from "../concurrency/election.js";
import type { RecipeBackend } from "../concurrency/recipes.js";
import {
  CampaignResponseSchema,
  LeaderKeySchema,
  LeaderResponseSchema,
  ProclaimResponseSchema,
  ResignResponseSchema,
  type CampaignRequest,
  type LeaderKey,
  type LeaderRequest,
  type LeaderResponse,
  type ProclaimRequest,
  type ResignRequest,
} from "../gen/v3electionpb/v3election_pb.js";
import { recipeCall } from "./lock.js";
import type { CallSignals } from "./recipe-backend.js";

/** etcd's error for Proclaim and Resign without a leader key. */
const ErrMissingLeaderKey = '"leader" field must be provided';

/** Where an Observe call's responses go: gRPC stream or gateway lines. Resolves once the response is taken. */
export interface ObserveSink {
  send(response: LeaderResponse): Promise<void>;
}

/** etcd's Election service (v3electionpb). */
export class ElectionService {
  constructor(
    private readonly backend: RecipeBackend,
    private readonly signals: CallSignals,
  ) {}

  implementation(): grpc.UntypedServiceImplementation {
    const backend = this.backend;
    return {
      campaign: recipeCall(this.signals, async (request: CampaignRequest, signal) => {
        const result = await campaign(backend, request.name, request.value, request.lease, signal);
        return create(CampaignResponseSchema, { header: result.header, leader: create(LeaderKeySchema, result.leader) });
      }),
      proclaim: recipeCall(this.signals, async (request: ProclaimRequest) => create(ProclaimResponseSchema, { header: await proclaim(backend, leadership(request.leader), request.value) })),
      leader: recipeCall(this.signals, async (request: LeaderRequest) => create(LeaderResponseSchema, await currentLeader(backend, request.name))),
      resign: recipeCall(this.signals, async (request: ResignRequest) => create(ResignResponseSchema, { header: await resign(backend, leadership(request.leader)) })),
      observe: (call: grpc.ServerWritableStream<LeaderRequest, LeaderResponse>) => {
        const sink: ObserveSink = {
          send: (response) =>
            new Promise((resolve) => {
              if (call.destroyed) return resolve();
              call.write(response, () => resolve());
            }),
        };
        const observing = this.signals.asCaller(call, () => this.observe(call.request, this.signals.forCall(call), sink));
        void observing.catch(() => undefined).then(() => {
          if (!call.destroyed && !call.writableEnded) call.end();
        });
      },
    };
  }

  /** Streams the leaders of an election to `sink` until `signal` aborts (or a read fails, which ends the stream as etcd does). */
  observe(request: LeaderRequest, signal: AbortSignal, sink: ObserveSink): Promise<void> {
    return observe(this.backend, request.name, signal, (state) => sink.send(create(LeaderResponseSchema, state)));
  }
}

function leadership(leader: LeaderKey | undefined): Leadership {
  if (leader === undefined) throw new Error(ErrMissingLeaderKey);
  return { name: leader.name, key: leader.key, rev: leader.rev, lease: leader.lease };
}
