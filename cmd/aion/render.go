package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// The output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// outputFlag adds -o to a command that prints data and checks its value
// before the command runs (a usage error otherwise). The command prints
// through render.
func outputFlag(cmd *cobra.Command) *string {
	format := cmd.Flags().StringP("output", "o", formatTable, "output format: table or json")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if *format != formatTable && *format != formatJSON {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: -o %q: want table or json", cmd.CommandPath(), *format)}
		}
		return nil
	}
	return format
}

// render prints v as indented JSON with -o json, and calls table to print
// it for people otherwise. Every command that prints data prints through
// it.
func (a *app) render(format string, v any, table func() error) error {
	if format == formatJSON {
		return a.printJSON(v)
	}
	return table()
}

// printJSON writes v as indented JSON and a newline.
func (a *app) printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the output as JSON: %w", err)
	}
	if _, err := a.stdout.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write the output: %w", err)
	}
	return nil
}
