"""docs/schema/*.schema.json against the real output of `status`, `preview` and `history`
--json in several situations, with the jsonschema library (python3-jsonschema). Besides
validating, every key the binary prints must be described in the schema: the schemas are what
fleet tools rely on, so a new key must be documented there."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import Machine, command_step  # noqa: E402

try:
    import jsonschema
except ImportError:  # pragma: no cover - the skip says why
    jsonschema = None

SOURCE = os.environ.get("BOOTSTATE_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))


def load_schema(name):
    with open(os.path.join(SOURCE, "docs", "schema", name + ".schema.json")) as file:
        return json.load(file)


def undocumented_keys(value, schema, root, path="$"):
    """Keys of `value` that `schema` (resolving local $refs and oneOf) does not describe."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    for alternative in schema.get("oneOf", []):
        if alternative.get("type") == "object" and isinstance(value, dict):
            schema = alternative
    missing = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key not in properties:
                missing.append("%s.%s" % (path, key))
            elif key != "detail":  # an executor's own data, described in words
                missing += undocumented_keys(item, properties[key], root, "%s.%s" % (path, key))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            missing += undocumented_keys(item, schema["items"], root, "%s[%d]" % (path, index))
    return missing


@unittest.skipIf(jsonschema is None, "python3-jsonschema is not installed (scripts/install-deps.sh)")
class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schemas = {name: load_schema(name) for name in ("status", "preview", "history")}
        for schema in cls.schemas.values():
            jsonschema.Draft202012Validator.check_schema(schema)

    def setUp(self):
        self.machine = Machine()
        self.addCleanup(self.machine.cleanup)
        self.checked = 0

    def check(self, name, *arguments):
        result = self.machine.bootstate("--json", *arguments)
        self.assertIn(result.returncode, (0, 1), result.stderr)
        document = json.loads(result.stdout)
        schema = self.schemas[name]
        jsonschema.Draft202012Validator(schema).validate(document)
        self.assertEqual(undocumented_keys(document, schema, schema), [],
                         "describe these keys in docs/schema/%s.schema.json" % name)
        self.checked += 1
        return document

    def check_all(self, *preview_targets):
        self.check("status", "status")
        self.check("history", "history")
        for target in preview_targets:
            self.check("preview", "preview", target)

    def test_a_machine_through_its_life(self):
        self.machine.write_plan("g0", [])
        self.machine.boot_into("g0")
        os.makedirs(self.machine.path("/boot/bootstate"), exist_ok=True)
        os.makedirs(self.machine.path("/var/lib/app"))
        self.check_all()  # before any attempt: attempt null, no migrations
        self.assertIsNone(self.check("status", "status")["attempt"])

        app = {"id": "app", "description": "the app's data", "policy": "required",
               "backup": ["/var/lib/app"],
               "steps": [command_step("export", ["/bin/true"], phase="pre-switch-root"),
                         command_step("convert", ["/bin/true"], reboot=True),
                         command_step("reindex", ["/bin/true"])],
               "undo": [command_step("unconvert", ["/bin/true"])]}
        disk = {"id": "disk", "policy": "recommended", "keep": True, "steps": [
            {"id": "grow", "phase": "initrd-pre-mount", "kind": "storage",
             "operations": [{"op": "grow-partition", "disk": "/dev/vdb",
                             "partition": "PARTLABEL=data", "size": "max"}]}]}
        optional = {"id": "extra", "policy": "optional",
                    "steps": [command_step("x", ["/bin/true"])]}
        g1 = self.machine.write_plan("g1", [app, optional])
        g2 = self.machine.write_plan("g2", [disk])
        self.check_all(g1, g2)
        self.assertTrue(self.check("preview", "preview", g2)["blocked"])  # no /dev/vdb here

        self.machine.boot_into("g1")
        self.machine.reboot()
        self.machine.boot()  # in progress: convert asks for a reboot
        status = self.check("status", "status")
        self.assertEqual(status["attempt"]["state"], "in-progress")
        self.check_all(g1, g2)
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)
        self.assertEqual(self.check("status", "status")["attempt"]["state"], "complete")

        failing = {"id": "broken", "policy": "required",
                   "steps": [command_step("boom", ["/bin/sh", "-c", "exit 7"])]}
        g3 = self.machine.write_plan("g3", [failing])  # app is stale here: undone
        self.check_all(g3)
        self.machine.boot_into("g3")
        self.machine.reboot()
        self.machine.boot()
        status = self.check("status", "status")
        self.assertEqual(status["attempt"]["state"], "failed")
        self.assertTrue(any(step["state"] == "failed" for m in status["migrations"]
                            for step in m["steps"]))
        self.assertTrue(any(m["undo_steps"] for m in status["migrations"]))
        self.check_all(g1, g3)
        self.assertGreaterEqual(self.checked, 15)


    def test_after_a_store_loss_held_is_a_readiness(self):
        # readiness "held" (DESIGN.md "After a store loss, held until accept") was missing from
        # the schema's enum: status --json of such a machine did not validate. Failed before
        # the fix.
        self.machine.write_plan("g1", [{"id": "once", "policy": "required", "steps": [
            command_step("append", ["/bin/sh", "-c", "echo a >> /dev/null"])]}])
        self.machine.boot_into("g1")
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 0)
        for slot in ("state.0", "state.1"):
            with open(self.machine.path("/boot/bootstate/" + slot), "wb") as file:
                file.write(b"garbage" * 10)
        self.machine.reboot()
        self.assertEqual(self.machine.boot(), 1)
        status = self.check("status", "status")
        self.assertEqual([m["readiness"] for m in status["migrations"]], ["held"])
        self.check_all()

    def test_the_contracts_keys_are_required(self):
        # DESIGN.md "status --json has at least": a schema that stopped requiring one of these
        # would let the binary drop it unnoticed.
        schema = self.schemas["status"]
        self.assertLessEqual({"booted", "last_good", "attempt", "migrations"},
                             set(schema["required"]))
        self.assertLessEqual({"generation", "entry"},
                             set(schema["properties"]["booted"]["required"]))
        attempt = [a for a in schema["properties"]["attempt"]["oneOf"]
                   if a.get("type") == "object"][0]
        self.assertLessEqual({"generation", "state", "reason"}, set(attempt["required"]))
        self.assertEqual(set(attempt["properties"]["state"]["enum"]),
                         {"in-progress", "complete", "failed", "abandoned"})
        migration = schema["properties"]["migrations"]["items"]
        self.assertLessEqual({"id", "policy", "state", "steps"}, set(migration["required"]))
        self.assertEqual(set(migration["properties"]["state"]["enum"]),
                         {"pending", "running", "applied", "failed", "declined", "undone"})
        step = schema["$defs"]["step"]
        self.assertLessEqual({"id", "phase", "state", "attempts", "message"},
                             set(step["required"]))
        self.assertEqual(set(step["properties"]["state"]["enum"]),
                         {"pending", "running", "done", "failed", "skipped"})

if __name__ == "__main__":
    unittest.main()
