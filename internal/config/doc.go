// Package config loads the settings of `pharos-node run`.
//
// A setting has one key path, such as brain.node. It can be given in three places; a later one wins:
//
//  1. the YAML file named by --config (keys nested as in the path: brain: {node: ...});
//  2. an environment variable: PHAROS_ plus the path in upper case with dots and dashes as
//     underscores (PHAROS_BRAIN_NODE);
//  3. a command-line flag: -- plus the path (--brain.node).
//
// Defaults fill what none of them sets. Load reports every problem it finds (unknown keys, with
// the closest known one; values that do not parse; impossible values and conflicts), each a
// *KeyError naming the key and where the value came from ("file F line N", "env X", "flag --x");
// errors.Is(err, ErrInvalid) holds and KeyErrors lists them. A conflict between two keys blames
// the one that was set. Warnings lists valid settings that do nothing (no ingest source; acked
// mode without a spill directory). The cookie is never a setting: CookieFromEnv reads it from
// PHAROS_COOKIE or node.cookie_file (mode 0400 or 0600), and it is never logged.
//
// Settings is the one table of keys behind run's --help, docs/configuration.md (WriteMarkdown),
// the flags of the other commands (Bind, which also keeps old spellings as aliases) and each
// key's reload class (live, restart, agent: what a SIGHUP does with a change).
//
// Load is a pure function of its arguments (file system, arguments, environment): no package state.
package config
