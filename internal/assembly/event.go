package assembly

import "fmt"

// EventKind says what an Event reports.
type EventKind int

const (
	// LayerStarted: the scan of Layer began; Total is its blob's size.
	LayerStarted EventKind = iota
	// LayerProgress: Done of Total bytes of Layer's blob are read.
	LayerProgress
	// LayerScanned: the scan of Layer ended, with Err if it failed.
	LayerScanned
	// Writing: Done of Total bytes of file content are written out (Layer is -1).
	Writing
	// Finished: a Packer's work is complete (Layer is -1).
	Finished
	// Scanning: Done of Total bytes of all the layers' blobs are read (Layer is -1); it
	// follows each LayerProgress, for a single progress line of the whole scan.
	Scanning
)

func (k EventKind) String() string {
	switch k {
	case LayerStarted:
		return "layer started"
	case LayerProgress:
		return "layer progress"
	case LayerScanned:
		return "layer scanned"
	case Writing:
		return "writing"
	case Finished:
		return "finished"
	case Scanning:
		return "scanning"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// An Event reports progress: of a layer's scan, of an export, of a Packer.
type Event struct {
	Kind        EventKind
	Layer       int
	Done, Total int64
	Err         error
}
