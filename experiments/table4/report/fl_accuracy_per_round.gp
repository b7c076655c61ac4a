# fl_accuracy_per_round: made by fedvim report; run `gnuplot fl_accuracy_per_round.gp` in this folder to redraw fl_accuracy_per_round.png
set terminal png size 900,600
set output 'fl_accuracy_per_round.png'
set title "Test accuracy per round (fedvim run)"
set xlabel "round"
set ylabel "test accuracy"
set grid
set key outside right
set yrange [0:1]
plot 'fl_accuracy_per_round.dat' index 0 with linespoints pt 7 title "cmnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 1 with linespoints pt 7 title "cmnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 2 with linespoints pt 7 title "cmnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 3 with linespoints pt 7 title "cmnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 4 with linespoints pt 7 title "cmnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 5 with linespoints pt 7 title "cmnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 6 with linespoints pt 7 title "fashion\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 7 with linespoints pt 7 title "fashion\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 8 with linespoints pt 7 title "fashion\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 9 with linespoints pt 7 title "fashion\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 10 with linespoints pt 7 title "fashion\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 11 with linespoints pt 7 title "fashion\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 12 with linespoints pt 7 title "lenet5\\_full/cmnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 13 with linespoints pt 7 title "lenet5\\_full/cmnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 14 with linespoints pt 7 title "lenet5\\_full/cmnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 15 with linespoints pt 7 title "lenet5\\_full/cmnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 16 with linespoints pt 7 title "lenet5\\_full/cmnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 17 with linespoints pt 7 title "lenet5\\_full/cmnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 18 with linespoints pt 7 title "lenet5\\_full/fashion\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 19 with linespoints pt 7 title "lenet5\\_full/fashion\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 20 with linespoints pt 7 title "lenet5\\_full/fashion\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 21 with linespoints pt 7 title "lenet5\\_full/fashion\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 22 with linespoints pt 7 title "lenet5\\_full/fashion\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 23 with linespoints pt 7 title "lenet5\\_full/fashion\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 24 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 25 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 26 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 27 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_iid\\_dp\\_c1\\_z0", \
     'fl_accuracy_per_round.dat' index 28 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_iid\\_dp\\_c1\\_z0.5", \
     'fl_accuracy_per_round.dat' index 29 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_iid\\_dp\\_c1\\_z1", \
     'fl_accuracy_per_round.dat' index 30 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 31 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 32 with linespoints pt 7 title "lenet5\\_full/mnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 33 with linespoints pt 7 title "lenet5\\_full\\_dauto/cmnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 34 with linespoints pt 7 title "lenet5\\_full\\_dauto/cmnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 35 with linespoints pt 7 title "lenet5\\_full\\_dauto/cmnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 36 with linespoints pt 7 title "lenet5\\_full\\_dauto/cmnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 37 with linespoints pt 7 title "lenet5\\_full\\_dauto/fashion\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 38 with linespoints pt 7 title "lenet5\\_full\\_dauto/fashion\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 39 with linespoints pt 7 title "lenet5\\_full\\_dauto/fashion\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 40 with linespoints pt 7 title "lenet5\\_full\\_dauto/fashion\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 41 with linespoints pt 7 title "lenet5\\_full\\_seed2/cmnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 42 with linespoints pt 7 title "lenet5\\_full\\_seed2/cmnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 43 with linespoints pt 7 title "lenet5\\_full\\_seed2/cmnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 44 with linespoints pt 7 title "lenet5\\_full\\_seed2/cmnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 45 with linespoints pt 7 title "lenet5\\_full\\_seed2/cmnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 46 with linespoints pt 7 title "lenet5\\_full\\_seed2/cmnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 47 with linespoints pt 7 title "lenet5\\_full\\_seed2/fashion\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 48 with linespoints pt 7 title "lenet5\\_full\\_seed2/fashion\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 49 with linespoints pt 7 title "lenet5\\_full\\_seed2/fashion\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 50 with linespoints pt 7 title "lenet5\\_full\\_seed2/fashion\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 51 with linespoints pt 7 title "lenet5\\_full\\_seed2/fashion\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 52 with linespoints pt 7 title "lenet5\\_full\\_seed2/fashion\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 53 with linespoints pt 7 title "lenet5\\_full\\_seed2/mnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 54 with linespoints pt 7 title "lenet5\\_full\\_seed2/mnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 55 with linespoints pt 7 title "lenet5\\_full\\_seed2/mnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 56 with linespoints pt 7 title "lenet5\\_full\\_seed2/mnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 57 with linespoints pt 7 title "lenet5\\_full\\_seed2/mnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 58 with linespoints pt 7 title "lenet5\\_full\\_seed2/mnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 59 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_mobilenet\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 60 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_mobilenet\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 61 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_mobilenet\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 62 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_resnet20\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 63 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_resnet20\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 64 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_resnet20\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 65 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_vgg11\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 66 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_vgg11\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 67 with linespoints pt 7 title "medium\\_dirichlet/cmnist\\_vgg11\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 68 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_mobilenet\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 69 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_mobilenet\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 70 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_mobilenet\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 71 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_resnet20\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 72 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_resnet20\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 73 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_resnet20\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 74 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_vgg11\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 75 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_vgg11\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 76 with linespoints pt 7 title "medium\\_dirichlet/fashion\\_vgg11\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 77 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_mobilenet\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 78 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_mobilenet\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 79 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_mobilenet\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 80 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_resnet20\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 81 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_resnet20\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 82 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_resnet20\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 83 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_vgg11\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 84 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_vgg11\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 85 with linespoints pt 7 title "medium\\_dirichlet/mnist\\_vgg11\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 86 with linespoints pt 7 title "medium\\_iid/cmnist\\_mobilenet\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 87 with linespoints pt 7 title "medium\\_iid/cmnist\\_mobilenet\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 88 with linespoints pt 7 title "medium\\_iid/cmnist\\_mobilenet\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 89 with linespoints pt 7 title "medium\\_iid/cmnist\\_resnet20\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 90 with linespoints pt 7 title "medium\\_iid/cmnist\\_resnet20\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 91 with linespoints pt 7 title "medium\\_iid/cmnist\\_resnet20\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 92 with linespoints pt 7 title "medium\\_iid/cmnist\\_vgg11\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 93 with linespoints pt 7 title "medium\\_iid/cmnist\\_vgg11\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 94 with linespoints pt 7 title "medium\\_iid/cmnist\\_vgg11\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 95 with linespoints pt 7 title "medium\\_iid/fashion\\_mobilenet\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 96 with linespoints pt 7 title "medium\\_iid/fashion\\_mobilenet\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 97 with linespoints pt 7 title "medium\\_iid/fashion\\_mobilenet\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 98 with linespoints pt 7 title "medium\\_iid/fashion\\_resnet20\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 99 with linespoints pt 7 title "medium\\_iid/fashion\\_resnet20\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 100 with linespoints pt 7 title "medium\\_iid/fashion\\_resnet20\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 101 with linespoints pt 7 title "medium\\_iid/fashion\\_vgg11\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 102 with linespoints pt 7 title "medium\\_iid/fashion\\_vgg11\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 103 with linespoints pt 7 title "medium\\_iid/fashion\\_vgg11\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 104 with linespoints pt 7 title "medium\\_iid/mnist\\_mobilenet\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 105 with linespoints pt 7 title "medium\\_iid/mnist\\_mobilenet\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 106 with linespoints pt 7 title "medium\\_iid/mnist\\_mobilenet\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 107 with linespoints pt 7 title "medium\\_iid/mnist\\_resnet20\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 108 with linespoints pt 7 title "medium\\_iid/mnist\\_resnet20\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 109 with linespoints pt 7 title "medium\\_iid/mnist\\_resnet20\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 110 with linespoints pt 7 title "medium\\_iid/mnist\\_vgg11\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 111 with linespoints pt 7 title "medium\\_iid/mnist\\_vgg11\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 112 with linespoints pt 7 title "medium\\_iid/mnist\\_vgg11\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 113 with linespoints pt 7 title "mnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 114 with linespoints pt 7 title "mnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 115 with linespoints pt 7 title "mnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 116 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_dp\\_c1\\_z0", \
     'fl_accuracy_per_round.dat' index 117 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_dp\\_c1\\_z0.1", \
     'fl_accuracy_per_round.dat' index 118 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_dp\\_c1\\_z0.5", \
     'fl_accuracy_per_round.dat' index 119 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_dp\\_c1\\_z1", \
     'fl_accuracy_per_round.dat' index 120 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 121 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 122 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 123 with linespoints pt 7 title "mnist\\_mobilenet\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 124 with linespoints pt 7 title "mnist\\_mobilenet\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 125 with linespoints pt 7 title "mnist\\_mobilenet\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 126 with linespoints pt 7 title "mnist\\_resnet20\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 127 with linespoints pt 7 title "mnist\\_resnet20\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 128 with linespoints pt 7 title "mnist\\_resnet20\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 129 with linespoints pt 7 title "mnist\\_vgg11\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 130 with linespoints pt 7 title "mnist\\_vgg11\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 131 with linespoints pt 7 title "mnist\\_vgg11\\_iid\\_vmix (mixed test images)"
