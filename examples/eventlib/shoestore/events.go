package shoestore

import "github.com/gomonster/monster"

// ProductViewedType is the type of the event the product page logs.
const ProductViewedType = "shoestore.product_viewed"

// ProductViewed is the data of a shoestore.product_viewed event: who saw
// which product, and the product's source at the time, so that consumers
// need not look the product up again.
type ProductViewed struct {
	User    string `json:"user"`
	Product string `json:"product"`
	Source  string `json:"source"`
}

// Validate rejects a view without a user, product or source; Monster runs
// it on every shoestore.product_viewed event at Log time.
func (v ProductViewed) Validate() error {
	switch {
	case v.User == "":
		return monster.FieldError("user", "is required")
	case v.Product == "":
		return monster.FieldError("product", "is required")
	case v.Source == "":
		return monster.FieldError("source", "is required")
	}
	return nil
}

// Declare declares shoestore.product_viewed on m.
func Declare(m *monster.Monster) *monster.Type[ProductViewed] {
	return monster.Declare[ProductViewed](m, ProductViewedType)
}
