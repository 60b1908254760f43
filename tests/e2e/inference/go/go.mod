module weft.test/inference

go 1.19
