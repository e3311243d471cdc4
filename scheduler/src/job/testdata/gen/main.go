// Command gen produces the job model's golden files from upstream's own code (see README.md).
//
//	go run . cron < in.tsv   # "spec<TAB>time" -> Next in UTC, NONE (zero time) or HANG;
//	                         # "P:spec" -> OK or ERR <message>
//	go run . pit < in.txt    # parsePointInTime from 2025-01-31T10:20:30.123456789Z;
//	                         # "N:name" -> the job name validator's verdict
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	cron "gen/kitcron"
	kittime "gen/kittime"
	"gen/validator"
)

var unescape = strings.NewReplacer(
	`\t`, "\t", `\n`, "\n", `\x00`, "\x00", `\u0085`, "\u0085", `\u00a0`, "\u00a0",
	`\u00ad`, "\u00ad", `\u200b`, "\u200b", `\ue000`, "\ue000", `\U000e0001`, "\U000e0001",
)

func escape(s string) string {
	return strings.NewReplacer("\n", `\n`, "\t", `\t`).Replace(s)
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for sc.Scan() {
		line := sc.Text()
		switch os.Args[1] {
		case "cron":
			fmt.Fprintf(w, "%s\t%s\n", line, cronLine(line))
		case "pit":
			fmt.Fprintf(w, "%s\t%s\n", line, pitLine(line))
		}
	}
}

func cronLine(line string) string {
	p := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	if spec, ok := strings.CutPrefix(line, "P:"); ok {
		if _, err := p.Parse(unescape.Replace(spec)); err != nil {
			return "ERR " + escape(err.Error())
		}
		return "OK"
	}
	spec, at, _ := strings.Cut(line, "\t")
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		panic(err)
	}
	s, err := p.Parse(spec)
	if err != nil {
		return "ERR " + escape(err.Error())
	}
	ch := make(chan time.Time, 1)
	go func() { ch <- s.Next(t.UTC()) }()
	select {
	case n := <-ch:
		if n.IsZero() {
			return "NONE"
		}
		return n.UTC().Format(time.RFC3339Nano)
	case <-time.After(2 * time.Second):
		return "HANG"
	}
}

func pitLine(line string) string {
	if name, ok := strings.CutPrefix(line, "N:"); ok {
		if err := validator.New().JobName(unescape.Replace(name)); err != nil {
			return "ERR " + escape(err.Error())
		}
		return "OK"
	}
	base := time.Date(2025, 1, 31, 10, 20, 30, 123456789, time.UTC)
	t, err := parsePointInTime(unescape.Replace(line), base)
	if err != nil {
		return "ERR " + err.Error()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// parsePointInTime is go-etcd-cron v0.12.7 internal/scheduler/builder.go's, verbatim.
func parsePointInTime(str string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, str)
	if err == nil {
		return t, nil
	}
	dur, err := time.ParseDuration(str)
	if err == nil {
		return now.Add(dur), nil
	}
	years, months, days, duration, repeats, err := kittime.ParseISO8601Duration(str)
	if err != nil {
		return time.Time{}, errors.New("due time format not recognized")
	}
	if repeats > 0 {
		return time.Time{}, errors.New("repeats not supported for due time")
	}
	return now.AddDate(years, months, days).Add(duration), nil
}
