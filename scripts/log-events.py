#!/usr/bin/env python3
"""Lists every log event in ferry's C sources as a Markdown table:
component, event, level, keys. docs/log-events.md holds this table;
tests/lint/log_events.sh fails when the two differ.

    scripts/log-events.py [SOURCE_ROOT]          print the table
    scripts/log-events.py --write [SOURCE_ROOT]  rewrite docs/log-events.md's table
"""
import glob, os, re, sys

args = sys.argv[1:]
write = bool(args) and args[0] == '--write'
if write:
    args = args[1:]
root = args[0] if args else os.path.join(os.path.dirname(__file__), '..')
call = re.compile(r'\blog_(debug|info|warn|error)\(\s*"([a-z_]+)"\s*,\s*((?:"(?:[^"\\]|\\.)*"\s*)+)')
rows = {}
for d in ('agent', 'engine', 'transport', 'qmp', 'schema', 'util', 'cli'):
    for f in sorted(glob.glob(os.path.join(root, d, '*.c'))):
        src = open(f, encoding='utf-8').read()
        for m in call.finditer(src):
            level, comp, lits = m.groups()
            fmt = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', lits))
            ev = re.match(r'event=([a-z_]+)', fmt)
            if not ev:
                continue
            keys = [k for k in re.findall(r'(?:^| )([a-z_]+)=', fmt) if k != 'event']
            key = (comp, ev.group(1))
            r = rows.setdefault(key, [set(), set(), set()])
            r[0].add(level)
            r[1].update(keys)
            r[2].add(os.path.relpath(f, root))
lines = ['| component | event | level | keys | where |', '|---|---|---|---|---|']
for (comp, ev), (levels, keys, files) in sorted(rows.items()):
    lines.append('| %s | `%s` | %s | %s | %s |' % (comp, ev, ', '.join(sorted(levels)),
                 ' '.join('`%s`' % k for k in sorted(keys)) or '–', ', '.join('`%s`' % f for f in sorted(files))))
if not write:
    print('\n'.join(lines))
    sys.exit(0)
doc = os.path.join(root, 'docs', 'log-events.md')
text = open(doc, encoding='utf-8').read()
begin = text.index('<!-- BEGIN GENERATED')
begin = text.index('\n', begin) + 1
end = text.index('<!-- END GENERATED')
open(doc, 'w', encoding='utf-8').write(text[:begin] + '\n'.join(lines) + '\n' + text[end:])
