package spill

// crash abandons the Log as a killed process would: nothing buffered is written, nothing more
// is synced, the meta file is not updated; files are closed and the lock released.
func (l *Log) crash() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFiles()
	if l.reg != nil {
		l.o.reg.Unregister(l.reg)
	}
	l.lock.Close()
}
