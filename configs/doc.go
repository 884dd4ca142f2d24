// Package configs holds the agent's YAML schema and the one way a config is
// read: defaults, then a strict decode (an unknown key or a value of the wrong
// type is an error naming its field, with a suggestion for a misspelt key),
// then normalisation, then validation of every section by the package that
// owns it. Parsing has no side effects: it reads no other files and opens
// nothing.
//
// The example configs in this folder are embedded; demo.yaml is the default
// that `agent run` uses when no --config is given.
package configs
