package shoestore

import "fmt"

// Product is a shoe for sale.
type Product struct {
	ID    string
	Name  string
	Price int // in cents
	// Source is who supplies the product; only some sources count towards
	// the Redis counter (RedisCounter.AllowedSources).
	Source string
}

// PriceText formats the price, "$89.00".
func (p Product) PriceText() string { return fmt.Sprintf("$%d.%02d", p.Price/100, p.Price%100) }

// Catalog is the products for sale, by ID.
type Catalog map[string]Product

// DemoCatalog returns the shop's example products: two from the
// "shoeprime" source, one from the "marketplace".
func DemoCatalog() Catalog {
	return Catalog{
		"air-1":   {ID: "air-1", Name: "Air Runner", Price: 8900, Source: "shoeprime"},
		"trail-2": {ID: "trail-2", Name: "Trail Climber", Price: 12000, Source: "shoeprime"},
		"clog-3":  {ID: "clog-3", Name: "Garden Clog", Price: 2500, Source: "marketplace"},
	}
}
