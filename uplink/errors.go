package uplink

// explainConnectError turns a failed connection attempt into an error an
// operator can act on.
func explainConnectError(err error, cfg Config) error {
	return err
}
