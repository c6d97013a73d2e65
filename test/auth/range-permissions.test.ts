import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Permission_Type, PermissionSchema } from "../../src/gen/authpb/auth_pb.js";
import { RangePermissions } from "../../src/auth/range-permissions.js";

const b = (text: string): Buffer => Buffer.from(text);
const zero = Buffer.from([0]);
const permission = (permType: Permission_Type, key: string, rangeEnd: string | Buffer = "") => create(PermissionSchema, { permType, key: b(key), rangeEnd: typeof rangeEnd === "string" ? b(rangeEnd) : rangeEnd });

test("keys, ranges, prefixes and from-key ranges, for reads and writes apart", () => {
  const permissions = new RangePermissions([
    permission(Permission_Type.READWRITE, "app/", "app0"),
    permission(Permission_Type.READ, "config"),
    permission(Permission_Type.WRITE, "logs/", zero),
  ]);
  assert.equal(permissions.permits("read", b("app/x"), b("")), true);
  assert.equal(permissions.permits("write", b("app/x"), b("")), true);
  assert.equal(permissions.permits("read", b("app/"), b("app0")), true, "the whole prefix");
  assert.equal(permissions.permits("read", b("app/"), b("app1")), false, "a range end past the prefix");
  assert.equal(permissions.permits("read", b("app/"), zero), false, "from the prefix on");
  assert.equal(permissions.permits("read", b("config"), b("")), true);
  assert.equal(permissions.permits("write", b("config"), b("")), false, "read only");
  assert.equal(permissions.permits("read", b("config"), b("config0")), false, "a range around a single-key permission");
  assert.equal(permissions.permits("write", b("logs/9"), b("zzz")), true, "inside a from-key permission");
  assert.equal(permissions.permits("write", b("logs/9"), zero), true);
  assert.equal(permissions.permits("read", b("logs/9"), b("")), false, "write only");
  assert.equal(permissions.permits("write", b("logs"), b("")), false, "before the from-key start");
});

test("adjacent and overlapping permissions cover a range together", () => {
  const permissions = new RangePermissions([permission(Permission_Type.READ, "a", "c"), permission(Permission_Type.READ, "c", "e"), permission(Permission_Type.READWRITE, "d", "g")]);
  assert.equal(permissions.permits("read", b("a"), b("g")), true);
  assert.equal(permissions.permits("read", b("a"), b("h")), false);
  assert.equal(permissions.permits("write", b("d"), b("g")), true);
  assert.equal(permissions.permits("write", b("c"), b("g")), false);
  assert.equal(new RangePermissions([]).permits("read", b("a"), b("")), false, "no permission, no access");
});
