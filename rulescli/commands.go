// Package rulescli holds the rules commands: `rules test` runs test files of logs and expected matches (testfile.go), `rules tail` prints live matches without joining the consumer group (tail.go).
package rulescli

import (
	"io"

	"github.com/alecthomas/kingpin/v2"
)

// TestCommand is `rules test FILE...`.
type TestCommand struct {
	cmd   *kingpin.CmdClause
	files *[]string
}

// NewTestCommand adds `test` under parent (the `rules` command).
func NewTestCommand(parent *kingpin.CmdClause) *TestCommand {
	cmd := parent.Command("test", "Run rule test files: input logs and the matches and samples each rule must give (docs/rules-cli.md). Exits 1 on any failure, with a diff per rule and log.")
	return &TestCommand{
		cmd:   cmd,
		files: cmd.Arg("file", "Test files (YAML).").Required().ExistingFiles(),
	}
}

// FullCommand is what kingpin's Parse returns when the command was chosen.
func (c *TestCommand) FullCommand() string { return c.cmd.FullCommand() }

// Run runs the test files, writing the results to w, and returns the exit
// code: 0 when every test passed, 1 otherwise.
func (c *TestCommand) Run(w io.Writer) int {
	if RunTests(w, *c.files) {
		return 0
	}
	return 1
}
