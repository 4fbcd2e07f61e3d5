// Package config loads the settings of `pharos-node run`.
//
// A setting has one key path, such as brain.node. It can be given in three places; a later one wins:
//
//  1. the YAML file named by --config (keys nested as in the path: brain: {node: ...});
//  2. an environment variable: PHAROS_ plus the path in upper case with dots and dashes as
//     underscores (PHAROS_BRAIN_NODE);
//  3. a command-line flag: -- plus the path (--brain.node).
//
// Defaults fill what none of them sets. Unknown keys in the file, unknown PHAROS_ variables that
// look like settings, and impossible values are refused at start with an error that names the key
// (errors.Is(err, ErrInvalid); errors.As gives *KeyError). The cookie is never a setting: it comes
// from PHAROS_COOKIE or from node.cookie_file, and is never logged.
//
// Load is a pure function of its arguments (file system, arguments, environment): no package state.
package config
