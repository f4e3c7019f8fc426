#!/usr/bin/env python3
"""Validate schema/ubuzima.schema.json and the seed files in schema/seed/.

Usage: python3 schema/check_schema.py [SCHEMA_FILE [SEED_DIR]]

Checks:
  * the schema file and every seed file parse as strict JSON;
  * the schema is well formed (table classes, scope, seal / sealed_with, field
    names, types, enum values, min/max/max_length, references);
  * every seed file names a table, every row has a unique text "id", only keys that
    exist in its table, all required fields, values of the right type, valid enum
    codes, and values within min/max/max_length;
  * references between seeded tables resolve (e.g. facility.district_id -> admin_area);
  * the schema builds as SQLite DDL with unquoted identifiers and every seed row
    inserts under the generated CHECK constraints.

Standard library only. Exits 0 when everything passes, 1 on any problem.
"""
import datetime
import json
import os
import re
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(HERE, "ubuzima.schema.json")
DEFAULT_SEED_DIR = os.path.join(HERE, "seed")

CLASSES = {"reference", "editable", "sealed", "append_only"}
TYPES = {"text", "int", "real", "bool", "date", "ts", "json", "enum"}
TABLE_KEYS = {"name", "class", "scope", "seal", "sealed_with", "description", "fields", "write_roles"}
FIELD_KEYS = {"name", "type", "values", "required", "min", "max", "max_length", "references",
              "actor", "value_roles"}
ROLES = {"admin", "coordinator", "assessor", "focal_point", "practitioner"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # same rule as the C++ loader (<= 63 chars)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VOID_FIELDS = {"voided_at": "ts", "voided_by": "text", "void_reason": "text"}

# SQLite keywords (https://sqlite.org/lang_keywords.html) plus a few words that are
# reserved elsewhere or that the project renames by convention.
SQL_KEYWORDS = set("""
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE
BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE
CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE
DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE
EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP
GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD
INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT
NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA
PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME
REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP
TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM
VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
AT COUNT USER DATE TIME TIMESTAMP
""".lower().split())


class Checker:
    def __init__(self):
        self.errors = []

    def err(self, where, msg):
        self.errors.append("%s: %s" % (where, msg))


def load_json(path, chk):
    def no_dupes(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise ValueError("duplicate key %r" % k)
            seen[k] = v
        return seen

    def bad_constant(c):
        raise ValueError("non-standard JSON constant %s" % c)

    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh, object_pairs_hook=no_dupes, parse_constant=bad_constant)
    except (OSError, ValueError) as exc:
        chk.err(path, "cannot load JSON: %s" % exc)
        return None


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool))


def check_name(chk, where, name, what):
    if not isinstance(name, str) or not NAME_RE.match(name):
        chk.err(where, "%s name %r is not lowercase snake_case (a-z first, <= 63 chars)" % (what, name))
        return False
    if name in SQL_KEYWORDS:
        chk.err(where, "%s name %r is an SQL keyword" % (what, name))
    return True


def check_schema(schema, chk):
    """Return {table_name: table} for the tables that are usable for seed checks."""
    where = "schema"
    if not isinstance(schema, dict):
        chk.err(where, "top level must be an object")
        return {}
    extra = set(schema) - {"schema_version", "tables"}
    if extra:
        chk.err(where, "unknown top-level keys %s" % sorted(extra))
    sv = schema.get("schema_version")
    if not is_int(sv) or sv < 1:
        chk.err(where, "schema_version must be an integer >= 1")
    tables = schema.get("tables")
    if not isinstance(tables, list) or not tables:
        chk.err(where, "tables must be a non-empty array")
        return {}

    by_name = {}
    for i, t in enumerate(tables):
        tw = "schema.tables[%d]" % i
        if not isinstance(t, dict):
            chk.err(tw, "table must be an object")
            continue
        name = t.get("name")
        if check_name(chk, tw, name, "table"):
            tw = "table %s" % name
            if name in by_name:
                chk.err(tw, "duplicate table name")
            by_name[name] = t
        extra = set(t) - TABLE_KEYS
        if extra:
            chk.err(tw, "unknown keys %s" % sorted(extra))
        for k in ("name", "class", "scope", "description", "fields"):
            if k not in t:
                chk.err(tw, "missing key %r" % k)
        if t.get("class") not in CLASSES:
            chk.err(tw, "class %r not one of %s" % (t.get("class"), sorted(CLASSES)))
        d = t.get("description")
        if not isinstance(d, str) or not d.strip() or "\n" in d:
            chk.err(tw, "description must be a non-empty one-line string")

        fields = t.get("fields")
        if not isinstance(fields, list) or not fields:
            chk.err(tw, "fields must be a non-empty array")
            t["_fields"] = {}
            continue
        fmap = {}
        for j, fd in enumerate(fields):
            fw = "%s.fields[%d]" % (tw, j)
            if not isinstance(fd, dict):
                chk.err(fw, "field must be an object")
                continue
            fname = fd.get("name")
            if check_name(chk, fw, fname, "field"):
                fw = "%s.%s" % (tw, fname)
                if fname == "id":
                    chk.err(fw, "'id' is implicit and must not be declared")
                if fname in fmap:
                    chk.err(fw, "duplicate field")
                fmap[fname] = fd
            extra = set(fd) - FIELD_KEYS
            if extra:
                chk.err(fw, "unknown keys %s" % sorted(extra))
            ftype = fd.get("type")
            if ftype not in TYPES:
                chk.err(fw, "type %r not one of %s" % (ftype, sorted(TYPES)))
            if ftype == "enum":
                vals = fd.get("values")
                if (not isinstance(vals, list) or not vals
                        or not all(isinstance(v, str) and v for v in vals)
                        or len(set(vals)) != len(vals)):
                    chk.err(fw, "enum needs a non-empty array of unique non-empty strings in 'values'")
            elif "values" in fd:
                chk.err(fw, "'values' is only allowed for enum fields")
            if "required" in fd and not isinstance(fd["required"], bool):
                chk.err(fw, "'required' must be true/false")
            for k in ("min", "max"):
                if k in fd:
                    if ftype not in ("int", "real"):
                        chk.err(fw, "'%s' is only allowed for int/real fields" % k)
                    elif not is_num(fd[k]) or (ftype == "int" and not is_int(fd[k])):
                        chk.err(fw, "'%s' must be a number of the field's type" % k)
            if is_num(fd.get("min")) and is_num(fd.get("max")) and fd["min"] > fd["max"]:
                chk.err(fw, "min > max")
            if "max_length" in fd:
                if ftype != "text":
                    chk.err(fw, "'max_length' is only allowed for text fields")
                elif not is_int(fd["max_length"]) or fd["max_length"] < 1:
                    chk.err(fw, "'max_length' must be a positive integer")
            if "references" in fd and not isinstance(fd["references"], str):
                chk.err(fw, "'references' must be a table name")
        t["_fields"] = fmap

    # Cross-table checks.
    for name, t in by_name.items():
        tw = "table %s" % name
        fmap = t["_fields"]
        cls = t.get("class")
        for fname, fd in fmap.items():
            ref = fd.get("references")
            if isinstance(ref, str) and ref not in by_name:
                chk.err("%s.%s" % (tw, fname), "references unknown table %r" % ref)
            if isinstance(ref, str) and fd.get("type") != "text":
                chk.err("%s.%s" % (tw, fname), "a reference field must be text (ids are text)")

        scope = t.get("scope", "missing")
        if scope is not None:
            sf = fmap.get(scope) if isinstance(scope, str) else None
            if sf is None:
                chk.err(tw, "scope %r is not a field of the table" % (scope,))
            else:
                if sf.get("type") != "text":
                    chk.err(tw, "scope field %r must be text" % scope)
                if sf.get("required") is not True:
                    chk.err(tw, "scope field %r must be required" % scope)
        if name == "facility" and scope is not None:
            chk.err(tw, "table facility must have scope null")

        # Who may write the table from a device: required on every device-written table, and
        # absent on reference tables (the server writes those).
        wr = t.get("write_roles")
        if cls == "reference":
            if wr is not None:
                chk.err(tw, "a reference table is written by the server only: no 'write_roles'")
        elif (not isinstance(wr, list) or not wr or not all(isinstance(r, str) for r in wr)
              or not set(wr) <= ROLES or len(set(wr)) != len(wr)):
            chk.err(tw, "'write_roles' must be a non-empty array of distinct roles from %s" % sorted(ROLES))
        for fname, fd in fmap.items():
            fw = "%s.%s" % (tw, fname)
            actor = fd.get("actor")
            if actor is not None:
                if fd.get("type") != "text":
                    chk.err(fw, "an actor field holds a user id: it must be text")
                if actor != "create" and actor not in fmap:
                    chk.err(fw, "'actor' must be \"create\" or the name of a field of the table")
            vr = fd.get("value_roles")
            if vr is not None:
                if fd.get("type") != "enum" or not isinstance(vr, dict) or not vr:
                    chk.err(fw, "'value_roles' maps values of an enum field to role lists")
                else:
                    for v, roles in vr.items():
                        if v not in (fd.get("values") or []):
                            chk.err(fw, "value_roles names %r, not a value of the field" % v)
                        if (not isinstance(roles, list) or not roles
                                or not all(isinstance(r, str) for r in roles) or not set(roles) <= ROLES):
                            chk.err(fw, "value_roles[%r] must be a non-empty array of roles" % v)

        seal, sw = t.get("seal"), t.get("sealed_with")
        if cls != "sealed":
            if seal is not None or sw is not None:
                chk.err(tw, "'seal'/'sealed_with' are only allowed on sealed tables")
        else:
            if (seal is None) == (sw is None):
                chk.err(tw, "a sealed table needs exactly one of 'seal' or 'sealed_with'")
            if seal is not None:
                if not isinstance(seal, dict) or set(seal) != {"field", "values"}:
                    chk.err(tw, "seal must be {\"field\": ..., \"values\": [...]}")
                else:
                    sf = fmap.get(seal["field"])
                    if sf is None or sf.get("type") != "enum":
                        chk.err(tw, "seal field %r must be an enum field of the table" % seal["field"])
                    elif (not isinstance(seal["values"], list) or not seal["values"]
                          or not set(seal["values"]) <= set(sf.get("values") or [])):
                        chk.err(tw, "seal values must be a non-empty subset of the enum values of %r"
                                % seal["field"])
            if sw is not None:
                if not isinstance(sw, dict) or set(sw) != {"table", "field"}:
                    chk.err(tw, "sealed_with must be {\"table\": ..., \"field\": ...}")
                else:
                    parent = by_name.get(sw["table"])
                    if parent is None or parent.get("class") != "sealed" or parent.get("seal") is None:
                        chk.err(tw, "sealed_with table %r must be a sealed table with its own seal"
                                % sw["table"])
                    lf = fmap.get(sw["field"])
                    if lf is None or lf.get("type") != "text" or lf.get("required") is not True:
                        chk.err(tw, "sealed_with field %r must be a required text field" % sw["field"])
                    elif lf.get("references") not in (None, sw["table"]):
                        chk.err(tw, "sealed_with field %r references another table" % sw["field"])
            sup = fmap.get("supersedes_id")
            if sup is None or sup.get("type") != "text":
                chk.err(tw, "sealed table needs a text field supersedes_id")

        if cls == "append_only":
            for vf, vt in VOID_FIELDS.items():
                fd = fmap.get(vf)
                if fd is None or fd.get("type") != vt:
                    chk.err(tw, "append_only table needs field %s (%s)" % (vf, vt))
                elif fd.get("required"):
                    chk.err(tw, "void field %s must not be required" % vf)
    return by_name


def check_value(chk, where, fd, v):
    """Return True when v matches the field definition (v is not None)."""
    ftype = fd.get("type")
    ok = True
    if ftype == "text":
        ok = isinstance(v, str)
        if ok and is_int(fd.get("max_length")) and len(v) > fd["max_length"]:
            chk.err(where, "longer than max_length %d" % fd["max_length"])
    elif ftype == "int":
        ok = is_int(v)
    elif ftype == "real":
        ok = is_num(v)
    elif ftype == "bool":
        ok = isinstance(v, bool)
    elif ftype == "ts":
        ok = is_int(v)
        if ok and v < 0:
            chk.err(where, "timestamp must be Unix ms >= 0")
    elif ftype == "date":
        ok = isinstance(v, str) and bool(DATE_RE.match(v))
        if ok:
            try:
                datetime.date.fromisoformat(v)
            except ValueError:
                ok = False
    elif ftype == "json":
        ok = isinstance(v, (list, dict))
    elif ftype == "enum":
        ok = isinstance(v, str)
        if ok and v not in (fd.get("values") or []):
            chk.err(where, "%r is not one of the enum values" % v)
    if not ok:
        chk.err(where, "value %r is not of type %s" % (v, ftype))
        return False
    if ftype in ("int", "real"):
        if is_num(fd.get("min")) and v < fd["min"]:
            chk.err(where, "value %r below min %r" % (v, fd["min"]))
        if is_num(fd.get("max")) and v > fd["max"]:
            chk.err(where, "value %r above max %r" % (v, fd["max"]))
    return True


def check_seeds(by_name, seed_dir, chk):
    """Return {table: rows} for the seed files that loaded."""
    seeds = {}
    if not os.path.isdir(seed_dir):
        chk.err(seed_dir, "seed directory not found")
        return seeds
    for fn in sorted(os.listdir(seed_dir)):
        path = os.path.join(seed_dir, fn)
        if not fn.endswith(".json") or not os.path.isfile(path):
            continue  # e.g. a CSV source or README next to the seed files
        tname = fn[:-5]
        if tname not in by_name:
            chk.err(path, "no table named %r in the schema" % tname)
            continue
        rows = load_json(path, chk)
        if rows is None:
            continue
        if not isinstance(rows, list):
            chk.err(path, "seed file must be a JSON array of row objects")
            continue
        fmap = by_name[tname]["_fields"]
        ids = set()
        for i, row in enumerate(rows):
            rw = "%s[%d]" % (fn, i)
            if not isinstance(row, dict):
                chk.err(rw, "row must be an object")
                continue
            rid = row.get("id")
            if not isinstance(rid, str) or not rid:
                chk.err(rw, "missing or non-text 'id'")
            else:
                rw = "%s[id=%s]" % (fn, rid)
                if rid in ids:
                    chk.err(rw, "duplicate id")
                ids.add(rid)
            for k, v in row.items():
                if k == "id":
                    continue
                fd = fmap.get(k)
                if fd is None:
                    chk.err(rw, "key %r is not a field of table %s" % (k, tname))
                elif v is not None:
                    check_value(chk, "%s.%s" % (rw, k), fd, v)
            for fname, fd in fmap.items():
                if fd.get("required") and row.get(fname) is None:
                    chk.err(rw, "required field %r missing" % fname)
        seeds[tname] = rows

    # Referential checks where the referenced table is seeded too.
    for tname, rows in seeds.items():
        for fname, fd in by_name[tname]["_fields"].items():
            ref = fd.get("references")
            if ref not in seeds:
                continue
            known = {r.get("id") for r in seeds[ref] if isinstance(r, dict)}
            for r in rows:
                if isinstance(r, dict) and r.get(fname) is not None and r[fname] not in known:
                    chk.err("%s.json[id=%s].%s" % (tname, r.get("id"), fname),
                            "%r not found in seed of %s" % (r[fname], ref))
    return seeds


SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "real": "REAL", "bool": "INTEGER",
             "date": "TEXT", "ts": "INTEGER", "json": "TEXT", "enum": "TEXT"}


def sql_lit(v):
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def ddl_for(t):
    cols = ["id TEXT PRIMARY KEY NOT NULL"]
    for fname, fd in t["_fields"].items():
        ftype = fd.get("type")
        col = "%s %s" % (fname, SQL_TYPES.get(ftype, "TEXT"))
        if fd.get("required"):
            col += " NOT NULL"
        checks = []
        if ftype == "enum":
            checks.append("%s IN (%s)" % (fname, ", ".join(sql_lit(v) for v in fd.get("values", []))))
        elif ftype == "bool":
            checks.append("%s IN (0, 1)" % fname)
        elif ftype == "date":
            checks.append("%s GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'" % fname)
        elif ftype == "json":
            checks.append("json_valid(%s)" % fname)
        elif ftype in ("int", "ts"):
            checks.append("typeof(%s) = 'integer'" % fname)
        if "min" in fd:
            checks.append("%s >= %s" % (fname, sql_lit(fd["min"])))
        if "max" in fd:
            checks.append("%s <= %s" % (fname, sql_lit(fd["max"])))
        if "max_length" in fd:
            checks.append("length(%s) <= %d" % (fname, fd["max_length"]))
        if checks:
            col += " CHECK (%s IS NULL OR (%s))" % (fname, " AND ".join(checks))
        cols.append(col)
    return "CREATE TABLE %s (\n  %s\n)" % (t["name"], ",\n  ".join(cols))


def check_sqlite(by_name, seeds, chk):
    db = sqlite3.connect(":memory:")
    try:
        for name, t in by_name.items():
            try:
                db.execute(ddl_for(t))
            except sqlite3.Error as exc:
                chk.err("table %s" % name, "SQLite DDL failed (unquoted identifiers): %s" % exc)
                continue
            for row in seeds.get(name, []):
                if not isinstance(row, dict) or any(k != "id" and k not in t["_fields"] for k in row):
                    continue  # already reported
                cols, vals = [], []
                for k, v in row.items():
                    if k != "id" and t["_fields"][k].get("type") == "json" and v is not None:
                        v = json.dumps(v, ensure_ascii=False)
                    elif isinstance(v, bool):
                        v = int(v)
                    elif isinstance(v, (list, dict)):
                        v = json.dumps(v)
                    cols.append(k)
                    vals.append(v)
                try:
                    db.execute("INSERT INTO %s (%s) VALUES (%s)" % (
                        name, ", ".join(cols), ", ".join("?" * len(cols))), vals)
                except sqlite3.Error as exc:
                    chk.err("%s.json[id=%s]" % (name, row.get("id")), "SQLite insert failed: %s" % exc)
    finally:
        db.close()


def main(argv):
    schema_path = argv[1] if len(argv) > 1 else DEFAULT_SCHEMA
    seed_dir = argv[2] if len(argv) > 2 else DEFAULT_SEED_DIR
    chk = Checker()
    schema = load_json(schema_path, chk)
    by_name = check_schema(schema, chk) if schema is not None else {}
    seeds = check_seeds(by_name, seed_dir, chk) if by_name else {}
    if not chk.errors:
        check_sqlite(by_name, seeds, chk)
    if chk.errors:
        for e in chk.errors:
            print("ERROR " + e, file=sys.stderr)
        print("FAILED: %d problem(s)" % len(chk.errors), file=sys.stderr)
        return 1
    nrows = sum(len(r) for r in seeds.values())
    print("OK: schema_version %s, %d tables, %d seed files, %d seed rows"
          % (schema["schema_version"], len(by_name), len(seeds), nrows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
