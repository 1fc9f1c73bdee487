-- TechEmpower Framework Benchmarks database: hello_world with World (10,000
-- rows of random numbers) and Fortune (the 12 standard rows). Loaded by
-- benchmarks/tfb/run.py and tests/test_tfb.py as the server's root user;
-- statements are separated by a semicolon at the end of a line.
DROP DATABASE IF EXISTS hello_world;
CREATE DATABASE hello_world CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
USE hello_world;

CREATE TABLE World (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  randomNumber int NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB;

SET SESSION max_recursive_iterations = 10000;
INSERT INTO World (id, randomNumber)
  WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 10000)
  SELECT n, 1 + FLOOR(RAND() * 10000) FROM seq;

CREATE TABLE Fortune (
  id int(10) unsigned NOT NULL AUTO_INCREMENT,
  message varchar(2048) CHARACTER SET utf8mb4 NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB;

INSERT INTO Fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal points, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');
