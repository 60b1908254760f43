module weft.test/gotls

go 1.19
