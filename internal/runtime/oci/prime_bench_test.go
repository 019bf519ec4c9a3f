package oci

import "testing"

func BenchmarkPrimeMigration(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := PrimeMigration(); err != nil {
			b.Fatal(err)
		}
	}
}
