// Command check runs a Tiltfile with Tilt's functions replaced by recorders and prints the
// calls as JSON lines ({"fn": name, "args": [...], "kwargs": {...}}), for
// crates/server/tests/deploy.rs: the Tiltfile must parse and run as Starlark, for each
// setting given as NAME=VALUE arguments (what `tilt up -- --NAME=VALUE` would pass).
// Tilt itself is not run: no cluster is needed.
//
//	go run . ../../../Tiltfile container_build=true
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

type call struct {
	Fn     string         `json:"fn"`
	Args   []any          `json:"args"`
	Kwargs map[string]any `json:"kwargs"`
}

var calls []call

func plain(v starlark.Value) any {
	switch v := v.(type) {
	case starlark.String:
		return string(v)
	case starlark.Bool:
		return bool(v)
	case starlark.Int:
		i, _ := v.Int64()
		return i
	case *starlark.List:
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, plain(v.Index(i)))
		}
		return out
	case *starlark.Dict:
		out := map[string]any{}
		for _, k := range v.Keys() {
			x, _, _ := v.Get(k)
			out[fmt.Sprint(plain(k))] = plain(x)
		}
		return out
	case *starlarkstruct.Struct:
		return v.String()
	}
	return v.String()
}

// recorder returns a builtin that records its call and returns `ret`.
func recorder(name string, ret starlark.Value) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		c := call{Fn: name, Args: []any{}, Kwargs: map[string]any{}}
		for _, a := range args {
			c.Args = append(c.Args, plain(a))
		}
		for _, kv := range kwargs {
			c.Kwargs[string(kv[0].(starlark.String))] = plain(kv[1])
		}
		calls = append(calls, c)
		return ret, nil
	})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: check TILTFILE [NAME=VALUE...]")
		os.Exit(2)
	}
	path := os.Args[1]
	settings := starlark.NewDict(0)
	for _, kv := range os.Args[2:] {
		k, v, _ := strings.Cut(kv, "=")
		var val starlark.Value = starlark.String(v)
		if v == "true" || v == "false" {
			val = starlark.Bool(v == "true")
		}
		settings.SetKey(starlark.String(k), val)
	}
	defined := map[string]bool{}
	define := func(name string) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			defined[string(args[0].(starlark.String))] = true
			return starlark.None, nil
		})
	}
	config := starlarkstruct.FromStringDict(starlark.String("config"), starlark.StringDict{
		"define_string": define("define_string"),
		"define_bool":   define("define_bool"),
		"parse": starlark.NewBuiltin("parse", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			for _, k := range settings.Keys() {
				if !defined[string(k.(starlark.String))] {
					return nil, fmt.Errorf("setting %s is not defined", k)
				}
			}
			return settings, nil
		}),
	})
	readFile := starlark.NewBuiltin("read_file", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		b, err := os.ReadFile(string(args[0].(starlark.String)))
		return starlark.String(b), err
	})
	predeclared := starlark.StringDict{
		"config":    config,
		"read_file": readFile,
		"blob": starlark.NewBuiltin("blob", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			return args[0], nil
		}),
		"k8s_yaml":       recorder("k8s_yaml", starlark.None),
		"k8s_resource":   recorder("k8s_resource", starlark.None),
		"docker_build":   recorder("docker_build", starlark.None),
		"local_resource": recorder("local_resource", starlark.None),
		"sync":           recorder("sync", starlark.String("sync")),
	}
	thread := &starlark.Thread{
		Name: "Tiltfile",
		Load: func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
			if module != "ext://restart_process" {
				return nil, fmt.Errorf("unknown extension %s", module)
			}
			return starlark.StringDict{"docker_build_with_restart": recorder("docker_build_with_restart", starlark.None)}, nil
		},
	}
	// Paths in a Tiltfile are relative to its directory.
	src, err := os.ReadFile(path)
	if err == nil {
		err = os.Chdir(dirOf(path))
	}
	if err == nil {
		opts := &syntax.FileOptions{TopLevelControl: true, GlobalReassign: true}
		_, err = starlark.ExecFileOptions(opts, thread, path, src, predeclared)
	}
	if err != nil {
		if e, ok := err.(*starlark.EvalError); ok {
			fmt.Fprintln(os.Stderr, e.Backtrace())
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, c := range calls {
		if err := enc.Encode(c); err != nil {
			panic(err)
		}
	}
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return path[:i+1]
	}
	return "."
}
