package main

import "github.com/berth-dev/berth/engine/monitor"

func init() {
	register(&command{name: "monitor", summary: "container monitor (internal)", hidden: true, run: monitor.Main})
}
